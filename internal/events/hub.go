package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Hub fans one subsystem's event log out to the north servers streaming
// from this instance. One goroutine (Run) tails the log and keeps the
// newest events encoded once, as frames, in a bounded cache; each stream
// copies the frames addressed to it from there, or reads the log itself
// when its cursor is older than the cache. An idle stream holds no
// goroutine and no buffer: only its connection and its cursor.
type Hub struct {
	log       Log
	o         HubOptions
	logger    *slog.Logger
	subsystem string

	mu      sync.RWMutex
	cache   cache
	changed chan struct{} // closed, and replaced, when the cache grows

	smu      sync.Mutex
	streams  map[*Stream]struct{}
	perToken map[[16]byte]int
	reserved int // streams opened and not yet dropped, and polls begun and not ended
	polls    int // long polls begun and not ended
	closing  bool
	closed   chan struct{} // closed when Shutdown begins
	gone     chan struct{} // signalled when a stream leaves during Shutdown

	m hubMetrics
}

// HubOptions are a hub's bounds and timings.
type HubOptions struct {
	Subsystem    string
	Heartbeat    time.Duration // a comment on every stream this often; tokens checked as often
	Retry        time.Duration // the reconnection delay a stream asks of its client
	DrainRetry   time.Duration // the one asked as streams close for a shutdown
	WriteTimeout time.Duration // a client that takes no write for this long is dropped
	Queue        int           // events a live stream may fall behind before it is dropped
	MaxStreams   int           // streams and long polls open on this instance for this subsystem
	MaxPerToken  int           // streams and long polls open on one token
	CacheEvents  int           // newest events kept encoded for fan-out
	CacheBytes   int           // and at most this many bytes of them
	// TokenLive reports whether a stream's token still verifies; a
	// stream whose token ended (logout, expiry, a newer login, its user
	// removed) is closed at the next heartbeat.
	TokenLive func(token [16]byte, now time.Time) bool
}

// Refusals of Open, for 429 and 503 answers.
var (
	ErrTooManyForToken = errors.New("too many streams open on this token")
	ErrTooManyStreams  = errors.New("too many streams open on this instance")
	ErrShuttingDown    = errors.New("shutting down")
)

// NewHub fans log out as o says; Run must be started for it to deliver.
func NewHub(log Log, o HubOptions, set *metrics.Set, label string, logger *slog.Logger) *Hub {
	h := &Hub{
		log:       log,
		o:         o,
		logger:    logger,
		subsystem: o.Subsystem,
		changed:   make(chan struct{}),
		streams:   make(map[*Stream]struct{}),
		perToken:  make(map[[16]byte]int),
		closed:    make(chan struct{}),
		gone:      make(chan struct{}, 1),
	}
	h.cache.init(o.CacheEvents, o.CacheBytes)
	h.m = newHubMetrics(set, label, h)
	return h
}

// Run tails the log into the cache, wakes the streams an event is for, and
// beats the heartbeat, until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	go h.beat(ctx)
	backoff := newBackoff()
	var head ID
	for ctx.Err() == nil {
		st, err := h.log.Stats(ctx)
		if err == nil {
			head = st.Head
			break
		}
		h.logger.Warn("event log unavailable; streams start once it answers", "subsystem", h.subsystem, "err", err)
		backoff.wait(ctx)
	}
	h.mu.Lock()
	h.cache.reset(head)
	h.mu.Unlock()
	// Streams opened before now took their start from the log, which
	// may have gone on since: the hub starts at its head, and wakes no
	// stream for what came before it. Each looks for itself.
	h.smu.Lock()
	for s := range h.streams {
		s.wake()
	}
	h.smu.Unlock()
	var batch []Event
	for ctx.Err() == nil {
		evs, next, reset, err := h.log.Read(ctx, head, 512, 2*time.Second, batch[:0])
		if err != nil {
			if ctx.Err() == nil {
				h.logger.Warn("event log unavailable; streams stay open and resume when it answers", "subsystem", h.subsystem, "err", err)
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		batch = evs
		if reset {
			// The log started again (a new epoch) or trimmed past
			// what this hub had read: streams find out from the
			// log, each with its own reset event.
			h.logger.Warn("event log reset under this instance; streams will resynchronise", "subsystem", h.subsystem, "from", next.String())
			h.mu.Lock()
			h.cache.reset(next)
			h.mu.Unlock()
		}
		if len(evs) == 0 && !reset {
			continue
		}
		prev := head
		if reset {
			// No stream moves on silently: each reads its reset.
			prev = ID{}
		}
		head = next
		h.mu.Lock()
		for i := range evs {
			h.cache.add(&evs[i], h.subsystem)
		}
		h.cache.head = head
		changed := h.changed
		h.changed = make(chan struct{})
		h.mu.Unlock()
		close(changed)
		h.wake(prev, head, evs)
		clear(evs) // the cache holds copies; let the data go
	}
}

// wake gives each stream the events of a batch: a stream with one for
// it writes; one with none, already caught up, just moves on.
func (h *Hub) wake(prev, head ID, evs []Event) {
	h.smu.Lock()
	defer h.smu.Unlock()
	for s := range h.streams {
		if s.writing.Load() {
			if s.live.Load() && head.Seq > s.sent.Load()+uint64(h.o.Queue) && head.Epoch == prev.Epoch {
				go s.drop(h.m.slowDropped)
				continue
			}
			s.wake() // the writer at work goes on through these too
			continue
		}
		if anyFor(evs, &s.reader) {
			s.wake()
			continue
		}
		if !s.writing.CompareAndSwap(false, true) {
			s.wake()
			continue
		}
		if s.cursor != prev {
			go s.run() // behind already: its writer skips these too
			continue
		}
		// Caught up, and nothing here for it: it moves on, unwritten.
		s.cursor = head
		s.sent.Store(head.Seq)
		s.writing.Store(false)
		if s.pending.Load() {
			s.wake()
		}
	}
}

func anyFor(evs []Event, r *Reader) bool {
	for i := range evs {
		if r.Wants(evs[i].To, evs[i].Type) || r.Outlived(evs[i].To) {
			return true // to write, or to stop before
		}
	}
	return false
}

// beat sends the heartbeat and closes the streams whose token ended.
func (h *Hub) beat(ctx context.Context) {
	t := time.NewTicker(h.o.Heartbeat)
	defer t.Stop()
	var snapshot []*Stream
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.smu.Lock()
			snapshot = snapshot[:0]
			for s := range h.streams {
				snapshot = append(snapshot, s)
			}
			h.smu.Unlock()
			for _, s := range snapshot {
				if !h.o.TokenLive(s.token, now) {
					s.drop(h.m.tokenEnded)
					continue
				}
				s.heartbeat.Store(true)
				s.wake()
			}
			clear(snapshot)
		}
	}
}

// Now is where "from now on" starts: the last event the hub has read, or,
// before it has read one, the log's last.
func (h *Hub) Now(ctx context.Context) (ID, error) {
	h.mu.RLock()
	head := h.cache.head
	h.mu.RUnlock()
	if !head.IsZero() {
		return head, nil
	}
	st, err := h.log.Stats(ctx)
	return st.Head, err
}

// Log is the log the hub fans out, which publishers append to.
func (h *Hub) Log() Log { return h.log }

// StreamsOpen is how many streams are open.
func (h *Hub) StreamsOpen() int {
	h.smu.Lock()
	defer h.smu.Unlock()
	return len(h.streams)
}

// Shutdown sends every stream a final retry, the DrainRetry delay, so
// that its client reconnects to another instance at once, and closes it;
// streams that do not take it by the end of ctx are cut. Long polls
// answer at once. No stream opens after it begins.
func (h *Hub) Shutdown(ctx context.Context) {
	h.smu.Lock()
	if !h.closing {
		h.closing = true
		close(h.closed)
	}
	for s := range h.streams {
		s.final.Store(true)
		s.wake()
	}
	h.smu.Unlock()
	for h.StreamsOpen() > 0 {
		select {
		case <-h.gone:
		case <-ctx.Done():
			h.smu.Lock()
			for s := range h.streams {
				go s.drop(nil)
			}
			h.smu.Unlock()
			return
		}
	}
}

// backoff paces retries against a log that does not answer: 50 ms
// doubling to 2 s.
type backoff struct{ d time.Duration }

func newBackoff() backoff { return backoff{50 * time.Millisecond} }

func (b *backoff) reset() { b.d = 50 * time.Millisecond }

func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(2*b.d, 2*time.Second)
}
