// Package memory is an event log kept in this process alone: one
// subsystem's events in a bounded ring, lost on restart, for a northd that
// runs on its own (-store memory).
package memory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"northd/internal/events"
)

// Options bound what a log keeps; past either bound the oldest events go.
type Options struct {
	Retention int // events kept
	MaxBytes  int // bytes of the events' Type and Data kept; 0 for no bound but Retention
}

// MaxIdempotencyKeys bounds the Idempotency-Keys a log remembers: past it
// the oldest is forgotten before its IdempotencyWindow ends, and a retry
// with it publishes again.
const MaxIdempotencyKeys = 100000

// Log is a subsystem's events in this process; see events.Log.
//
// An event's Data is copied once, when it is published, into memory no
// one writes again: Read hands out that memory, which its callers may keep
// however long they like, but must not modify, as every reader shares it.
type Log struct {
	epoch     string
	retention int
	maxBytes  int

	mu    sync.Mutex
	kept  ring[events.Event]
	bytes int    // of the kept events' Type and Data
	head  uint64 // seq of the last published; 0 before the first
	// published is closed by every publish and replaced, waking the
	// readers waiting on it.
	published chan struct{}
	keys      ring[rememberedKey] // oldest first, for forgetting
	byKey     map[[sha256.Size]byte]rememberedKey
}

var _ events.Log = (*Log)(nil)

// rememberedKey is a publish made with an Idempotency-Key, by the key's
// digest: the ids it was given, first to first+n-1.
type rememberedKey struct {
	digest [sha256.Size]byte
	first  uint64
	n      int
	at     time.Time
}

// New is an empty log of a new epoch, bounded by o (a Retention under 1
// keeps 1).
func New(o Options) *Log {
	return &Log{
		epoch:     newEpoch(),
		retention: max(o.Retention, 1),
		maxBytes:  o.MaxBytes,
		published: make(chan struct{}),
		byKey:     make(map[[sha256.Size]byte]rememberedKey),
	}
}

// newEpoch is random, so that no two logs, or two runs of one, share an
// epoch and so ids.
func newEpoch() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Publish appends drafts at now; see events.Log.
func (l *Log) Publish(_ context.Context, idempotencyKey string, drafts []events.Draft, now time.Time) ([]events.ID, bool, error) {
	if len(drafts) == 0 {
		return nil, false, nil
	}
	var digest [sha256.Size]byte
	if idempotencyKey != "" {
		digest = sha256.Sum256([]byte(idempotencyKey))
	}
	// One buffer for the batch's data, made before the lock is taken; the
	// caller may reuse its own at once. Its full slice expressions keep an
	// append to one event's Data from writing into the next one's.
	size := 0
	for _, d := range drafts {
		size += len(d.Data)
	}
	buf := make([]byte, 0, size)
	batch := make([]events.Event, len(drafts))
	for i, d := range drafts {
		start := len(buf)
		buf = append(buf, d.Data...)
		// Clone: a type cut from a larger string (a request body) would
		// keep all of it in memory, unaccounted for by MaxBytes.
		batch[i] = events.Event{Type: strings.Clone(d.Type), Time: now, To: d.To, Data: buf[start:len(buf):len(buf)]}
		batch[i].To.Username = strings.Clone(d.To.Username)
	}

	l.mu.Lock()
	l.forgetKeys(now)
	if idempotencyKey != "" {
		if r, ok := l.byKey[digest]; ok {
			l.mu.Unlock()
			return l.ids(r.first, r.n), true, nil
		}
	}
	first := l.head + 1
	for i := range batch {
		l.head++
		batch[i].ID = events.ID{Epoch: l.epoch, Seq: l.head}
		if l.kept.len() == l.retention {
			l.trimOldest()
		}
		l.kept.push(batch[i])
		l.bytes += len(batch[i].Type) + len(batch[i].Data)
		// The newest event is kept even when it alone is past MaxBytes:
		// a publish whose events were gone at once would leave its
		// readers only a reset.
		for l.maxBytes > 0 && l.bytes > l.maxBytes && l.kept.len() > 1 {
			l.trimOldest()
		}
	}
	if idempotencyKey != "" {
		l.rememberKey(rememberedKey{digest: digest, first: first, n: len(batch), at: now})
	}
	close(l.published)
	l.published = make(chan struct{})
	l.mu.Unlock()
	return l.ids(first, len(batch)), false, nil
}

func (l *Log) ids(first uint64, n int) []events.ID {
	ids := make([]events.ID, n)
	for i := range ids {
		ids[i] = events.ID{Epoch: l.epoch, Seq: first + uint64(i)}
	}
	return ids
}

func (l *Log) trimOldest() {
	e := l.kept.pop()
	l.bytes -= len(e.Type) + len(e.Data)
}

// forgetKeys forgets the keys given before now's IdempotencyWindow.
func (l *Log) forgetKeys(now time.Time) {
	for l.keys.len() > 0 && now.Sub(l.keys.at(0).at) >= events.IdempotencyWindow {
		l.forgetOldestKey()
	}
}

func (l *Log) forgetOldestKey() {
	r := l.keys.pop()
	// A key forgotten and given again has a newer entry of its own.
	if l.byKey[r.digest].first == r.first {
		delete(l.byKey, r.digest)
	}
}

func (l *Log) rememberKey(r rememberedKey) {
	if l.keys.len() == MaxIdempotencyKeys {
		l.forgetOldestKey()
	}
	l.keys.push(r)
	l.byKey[r.digest] = r
}

// Read appends up to max events published after after to dst; see
// events.Log. It returns ctx's error when ctx ends while it waits.
func (l *Log) Read(ctx context.Context, after events.ID, max int, wait time.Duration, dst []events.Event) ([]events.Event, events.ID, bool, error) {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		n := len(dst)
		dst, next, reset := l.read(after, max, dst)
		published := l.published
		l.mu.Unlock()
		if len(dst) > n || reset || wait <= 0 || max <= 0 {
			return dst, next, reset, nil
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-published:
		case <-timeout:
			return dst, after, false, nil
		case <-ctx.Done():
			return dst, after, false, ctx.Err()
		}
	}
}

// read is Read without the wait, under l.mu.
func (l *Log) read(after events.ID, max int, dst []events.Event) ([]events.Event, events.ID, bool) {
	oldest := l.head - uint64(l.kept.len()) + 1 // head+1 when none is kept
	from, reset := after.Seq, false
	switch {
	case after.IsZero():
		from = oldest - 1
	case after.Epoch != l.epoch || after.Seq > l.head || after.Seq+1 < oldest:
		from, reset = oldest-1, true
	}
	next := after
	if reset {
		next = events.ID{Epoch: l.epoch, Seq: from}
	}
	for seq := from + 1; seq <= l.head && max > 0; seq++ {
		e := l.kept.at(int(seq - oldest))
		dst = append(dst, *e)
		next = e.ID
		max--
	}
	return dst, next, reset
}

// Stats describes the log; see events.Log.
func (l *Log) Stats(context.Context) (events.Stats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s events.Stats
	s.Len = l.kept.len()
	if s.Len > 0 {
		s.Oldest = l.kept.at(0).ID
	}
	if l.head > 0 {
		s.Head = events.ID{Epoch: l.epoch, Seq: l.head}
	}
	return s, nil
}

// Ready is always true: the log is this process's own memory.
func (l *Log) Ready() bool { return true }
