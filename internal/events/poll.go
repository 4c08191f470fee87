package events

import (
	"context"
	"time"
)

// Poll appends to dst, as JSON objects each followed by a comma, at most
// maxEvents of the events after after that r wants, waiting up to wait
// for the first (a long poll, for clients that cannot read a stream; a
// webhook's next batch). A zero after with fromNow waits for events from
// now on. It returns where the next poll goes on from, and whether the
// answer starts with a reset event. It answers at once, with what it has,
// when ctx ends or the hub shuts down.
func (h *Hub) Poll(ctx context.Context, after ID, fromNow bool, wait time.Duration, r *Reader, maxEvents, maxBytes int, dst []byte) ([]byte, ID, bool, error) {
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
		h.mu.RLock()
		changed := h.changed
		if h.cache.covers(cursor) {
			dst, cursor, _ = h.cache.appendAfter(dst, cursor, r, start+maxBytes, maxEvents, true, nil)
			h.mu.RUnlock()
		} else {
			h.mu.RUnlock()
			var reset bool
			var err error
			if dst, cursor, _, reset, err = h.appendFromLog(dst, cursor, r, maxEvents, start+maxBytes, true); err != nil || reset {
				return dst, cursor, reset, err
			}
		}
		if len(dst) > start {
			return dst, cursor, false, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return dst, cursor, false, nil
		case <-ctx.Done():
			return dst, cursor, false, nil
		case <-h.closed:
			return dst, cursor, false, nil
		}
	}
}
