package events

import (
	"context"
	"time"
)

// Polled is what a Poll found besides its events.
type Polled struct {
	Next   ID        // where the next poll goes on from
	Reset  bool      // the answer starts with a reset event
	Oldest time.Time // when the first event answered was published; zero when none
	// Outlived: it stopped before an event for a later login at the
	// reader's ip (Reader.Outlived); the reader's tenure is over.
	Outlived bool
}

// BeginPoll takes a place for a long poll on token, under the same
// bounds as streams, MaxPerToken and MaxStreams: a client waiting on a
// poll holds a connection and a goroutine as a stream does, and polls
// must not get past the bounds streams are held to. EndPoll gives it
// back.
func (h *Hub) BeginPoll(token [16]byte) error {
	h.smu.Lock()
	defer h.smu.Unlock()
	if err := h.reserve(token); err != nil {
		return err
	}
	h.polls++
	return nil
}

// EndPoll gives back the place BeginPoll took.
func (h *Hub) EndPoll(token [16]byte) {
	h.smu.Lock()
	h.release(token)
	h.polls--
	h.smu.Unlock()
}

// PollsWaiting is how many long polls hold a place, between BeginPoll and
// EndPoll.
func (h *Hub) PollsWaiting() int {
	h.smu.Lock()
	defer h.smu.Unlock()
	return h.polls
}

// Poll appends to dst, as JSON objects each followed by a comma, at most
// maxEvents of the events after after that r wants, waiting up to wait
// for the first (a long poll, for clients that cannot read a stream; a
// webhook's next batch). A zero after with fromNow waits for events from
// now on. It answers at once, with what it has, when ctx ends or the hub
// shuts down.
func (h *Hub) Poll(ctx context.Context, after ID, fromNow bool, wait time.Duration, r *Reader, maxEvents, maxBytes int, dst []byte) ([]byte, Polled, error) {
	cursor := after
	if fromNow {
		h.mu.RLock()
		cursor = h.cache.head
		h.mu.RUnlock()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		start := len(dst)
		var a appended
		h.mu.RLock()
		changed := h.changed
		if h.cache.covers(cursor) {
			dst, a = h.cache.appendAfter(dst, cursor, r, start+maxBytes, maxEvents, true)
			h.mu.RUnlock()
		} else {
			h.mu.RUnlock()
			var err error
			if dst, a, err = h.appendFromLog(dst, cursor, r, maxEvents, start+maxBytes, true); err != nil {
				return dst, Polled{Next: cursor}, err
			}
		}
		cursor = a.cursor
		if len(dst) > start || a.reset || a.outlived {
			p := Polled{Next: cursor, Reset: a.reset, Outlived: a.outlived}
			if a.n > 0 {
				p.Oldest = time.Unix(0, a.oldest)
			}
			return dst, p, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return dst, Polled{Next: cursor}, nil
		case <-ctx.Done():
			return dst, Polled{Next: cursor}, nil
		case <-h.closed:
			return dst, Polled{Next: cursor}, nil
		}
	}
}
