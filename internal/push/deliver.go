package push

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"northd/internal/events"
	"northd/internal/webhooks"
)

// ownerTenure is the tenure of the subscription's owner at its ip, and
// false while it does not hold the ip (or the store does not answer).
func (p *Pusher) ownerTenure(ctx context.Context, s *Subscription) (events.Tenure, bool) {
	holder, live, tenure, err := p.tokens.Holder(ctx, s.Owner.IP, time.Now())
	if err != nil || !live || holder != s.Owner.Username {
		return events.Tenure{}, false
	}
	return events.Tenure(tenure), true
}

// errOutlived is a rebuild's stop at an event for a later login at the
// owner's ip: its delivery pauses and reads again.
var errOutlived = errors.New("the owner's tenure ended")

// outcome classes an attempt, for its metric.
type outcome uint8

const (
	delivered   outcome = iota // 2xx
	redirected                 // 3xx: not followed, a failure
	refused                    // 4xx other than 410 and 429
	gone                       // 410: the subscription ends
	rateLimited                // 429, or 503 with Retry-After
	failed                     // 5xx
	timedOut                   // no answer within -push-timeout
	forbidden                  // an address -push-allow does not permit
	unreachable                // connection refused, reset, name not found...
	outcomeCount
)

var outcomeNames = [outcomeCount]string{"delivered", "redirect", "client_error", "gone", "rate_limited", "server_error", "timeout", "forbidden_address", "unreachable"}

// deliver is a subscription's deliveries from this instance, one at a
// time, in order, until it ends: while this instance holds its lease, the
// next batch of events for it after its cursor, posted until a 2xx takes
// it, and only then the cursor moved past it. A batch's last event is
// recorded beside the cursor before its first attempt: an instance that
// loses the lease (it stalled, or the store did) drops its batch, and the
// new holder posts the same events again under the same webhook-id (at
// least once), though more were published meanwhile.
func (p *Pusher) deliver(s *Subscription) {
	ctx := s.ctx
	limit := rate.NewLimiter(rate.Limit(p.o.Rate), 1)
	var batch []byte // the batch being delivered: the same bytes, and id, until taken
	var next events.ID
	var pending events.ID // the recorded end of the batch to post again; zero: none
	var msgID string
	var oldest time.Time // when the batch's first event was published
	holding := false
	lose := func() {
		holding, batch = false, nil
		s.mu.Lock()
		// The failure clock is the store's (Failing) once the lease
		// is taken again: another instance may have delivered, or the
		// north server enabled it again, meanwhile.
		s.holding, s.state = false, Active
		s.attempt, s.failingSince = 0, time.Time{}
		s.mu.Unlock()
	}
	for ctx.Err() == nil {
		s.mu.Lock()
		disabled := s.disabled
		s.mu.Unlock()
		if disabled {
			lose() // let the lease lapse: no instance delivers
			select {
			case <-ctx.Done():
			case <-s.wake:
			case <-time.After(p.o.SyncEvery): // enabled on another instance
			}
			continue
		}
		// Each turn renews the lease, under which the batch is made
		// (a poll lasts a third of it at most); the POST renews it
		// again, after the waits for its turn.
		ok, err := p.subs.Lease(ctx, s.ID, p.holder, p.o.LeaseTTL)
		if err != nil && holding {
			// The store did not answer: the holder keeps its place
			// (its cursor and batch), and asks again sooner than the
			// others do, so that a Redis that comes back with older
			// data goes on from what this instance knows, not from
			// what it forgot.
			p.pause(ctx, p.o.LeaseTTL/10)
			continue
		}
		if err != nil || !ok {
			lose()
			p.pause(ctx, p.o.LeaseTTL/3)
			continue
		}
		if !holding {
			cursor, end, found, err := p.subs.Cursor(ctx, s.ID)
			if err != nil || !found {
				p.pause(ctx, p.o.LeaseTTL/3)
				continue
			}
			s.mu.Lock()
			s.cursor, s.holding = cursor, true
			s.mu.Unlock()
			holding, pending = true, end
		}
		s.mu.Lock()
		cursor := s.cursor
		s.mu.Unlock()
		// A north server that is logged out receives nothing until it
		// logs in again; its batch waits for it. The events to its ip
		// while no one held it are its when its login was the next
		// there: a batch is read, or read again, in the tenure it
		// holds, and only while it holds the ip, so that none of its
		// own is passed over and a batch read again holds what it held.
		tenure, live := p.ownerTenure(ctx, s)
		if !live {
			p.setState(s, Paused)
			p.pause(ctx, min(p.o.PauseCheck, p.o.LeaseTTL/3))
			continue
		}
		if batch == nil {
			s.reader.Tenure = tenure
		}
		if batch == nil && !pending.IsZero() {
			// The batch an attempt posted, here or on another
			// instance: the same events, the same id.
			objects, first, err := p.rebuild(ctx, s, cursor, pending)
			if err != nil {
				p.pause(ctx, min(p.o.PauseCheck, p.o.LeaseTTL/3))
				continue
			}
			if len(objects) == 1 { // none of its events is left for it
				if ok, _ := p.subs.Advance(ctx, s.ID, p.holder, cursor, pending); !ok {
					lose()
					continue
				}
				s.mu.Lock()
				s.cursor = pending
				s.mu.Unlock()
				pending = events.ID{}
				continue
			}
			objects[len(objects)-1] = ']' // the last comma
			batch, next, oldest = objects, pending, first
			msgID = "msg_" + s.ID + "_" + next.String()
		}
		if batch == nil {
			// A reset event, when the log no longer keeps what
			// came after the cursor, leads the batch.
			objects, polled, err := p.hub.Poll(ctx, cursor, false, min(5*time.Second, p.o.LeaseTTL/3), &s.reader, p.o.Batch, p.o.BatchBytes, []byte{'['})
			n := polled.Next
			if err != nil {
				p.pause(ctx, min(p.o.PauseCheck, p.o.LeaseTTL/3))
				continue
			}
			if again, live := p.ownerTenure(ctx, s); !live || again != tenure {
				continue // it logged in or out while the log was read: read again
			}
			if polled.Outlived {
				// Its tenure ended though the store still said it
				// held the ip: read again once the store catches up.
				p.pause(ctx, min(p.o.PauseCheck, p.o.LeaseTTL/3))
				continue
			}
			if len(objects) == 1 {
				// Nothing for it: the events passed over were not its.
				if n != cursor {
					if ok, _ := p.subs.Advance(ctx, s.ID, p.holder, cursor, n); ok {
						s.mu.Lock()
						s.cursor = n
						s.mu.Unlock()
					}
				}
				continue
			}
			// Its range is fixed before its first attempt: the
			// same events, and the same id, for every attempt of
			// the batch, on any instance, so that a receiver can
			// tell a redelivery.
			end, ok, err := p.subs.Pending(ctx, s.ID, p.holder, cursor, n)
			if err != nil || !ok {
				lose()
				p.pause(ctx, p.o.LeaseTTL/3)
				continue
			}
			if end != n {
				lose() // another's batch: posted again from the store's record
				continue
			}
			objects[len(objects)-1] = ']' // the last comma
			batch, next, pending, oldest = objects, n, n, polled.Oldest
			msgID = "msg_" + s.ID + "_" + next.String()
		}
		p.setState(s, Active)
		// The wait for the rate's turn keeps the lease (a rate
		// slower than the lease lasts would otherwise hand it to
		// another instance before every batch).
		if r := limit.Reserve(); r.Delay() < p.o.LeaseTTL/3 {
			p.pause(ctx, r.Delay()) // within the lease renewed above
		} else if !p.hold(ctx, s, r.Delay()) {
			r.Cancel()
			lose()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		status, wait, result, errText, held, down := p.send(ctx, s, msgID, batch)
		if ctx.Err() != nil {
			return
		}
		if down { // nothing posted; the store did not answer
			p.pause(ctx, p.o.LeaseTTL/10)
			continue
		}
		if !held {
			lose() // another instance delivers: it posts this batch again
			p.pause(ctx, p.o.LeaseTTL/3)
			continue
		}
		now := time.Now()
		s.mu.Lock()
		s.lastAttempt, s.lastStatus, s.lastError = now, status, errText
		s.mu.Unlock()
		switch result {
		case delivered:
			if ok, err := p.subs.Advance(ctx, s.ID, p.holder, cursor, next); err == nil && !ok {
				lose() // another instance took over; it posts this batch again
				continue
			}
			// Taken, though the store may not have said so: this
			// instance goes on from next, and the store's cursor,
			// if it missed it, catches up at the next Pending or
			// Advance (a cursor behind the holder's is the holder's).
			s.mu.Lock()
			s.cursor, s.attempt, s.failingSince = next, 0, time.Time{}
			s.deliveries++
			s.mu.Unlock()
			if !oldest.IsZero() { // zero: a batch of a reset alone
				p.m.deliverySeconds.Update(now.Sub(oldest).Seconds())
			}
			batch, pending = nil, events.ID{}
			continue
		case gone:
			p.m.ended.Inc()
			p.subs.Delete(ctx, s.ID)
			p.end(s, "its url answered 410 Gone")
			return
		}
		s.mu.Lock()
		first := s.attempt == 0
		s.mu.Unlock()
		since := now
		if first {
			// Failing since the first failure on any instance: a
			// lease handover does not restart -push-disable-after.
			if t, ok, err := p.subs.Failing(ctx, s.ID, p.holder, now); err == nil && ok {
				since = t
			}
		}
		s.mu.Lock()
		if s.failingSince.IsZero() { // the first failure, here or (since) anywhere
			s.failingSince = since
		}
		s.attempt++
		failingFor, attempt := now.Sub(s.failingSince), s.attempt
		s.mu.Unlock()
		if failingFor >= p.o.DisableAfter {
			r := s.record()
			r.Disabled = true
			if p.save(ctx, s, r) == nil {
				p.m.disabled.Inc()
				p.log.Warn("webhook subscription disabled: failing without a success for -push-disable-after; its north server may enable it again",
					"subsystem", p.o.Subsystem, "id", s.ID, "failing_for", failingFor, "last_error", errText)
			}
			continue
		}
		if wait == 0 {
			wait = p.o.Backoff(attempt)
		}
		if !p.hold(ctx, s, wait) {
			lose()
		}
	}
}

// hold waits d while keeping s's lease, renewing it every third of its
// time; false when it was lost.
func (p *Pusher) hold(ctx context.Context, s *Subscription, d time.Duration) bool {
	for end := time.Now().Add(d); ctx.Err() == nil; {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		p.pause(ctx, min(left, p.o.LeaseTTL/3))
		if ok, err := p.subs.Lease(ctx, s.ID, p.holder, p.o.LeaseTTL); err == nil && !ok {
			return false // a store that did not answer is asked again
		}
	}
	return true
}

func (p *Pusher) setState(s *Subscription, st State) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// pause waits d, or until ctx ends.
func (p *Pusher) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// rebuild is s's batch after cursor up to end, its recorded last event:
// the events an attempt posted before, here or on another instance, and
// none published since. Polled one at a time so that none past end joins
// it (a poll stops at a count of events, and the events in the range that
// are not for s do not count); whatever the log no longer holds of the
// range is left out, and the batch still ends at end, under end's id.
// oldest is when its first event was published.
func (p *Pusher) rebuild(ctx context.Context, s *Subscription, cursor, end events.ID) (objects []byte, oldest time.Time, err error) {
	objects = []byte{'['}
	// Each poll passes over one event of the log at least, or stops.
	steps := end.Seq + 1 // from the start of end's epoch, after a reset
	if cursor.Epoch == end.Epoch {
		steps = end.Seq - min(cursor.Seq, end.Seq)
	}
	for at := cursor; at != end && steps > 0; steps-- {
		n := len(objects)
		var polled events.Polled
		objects, polled, err = p.hub.Poll(ctx, at, false, 0, &s.reader, 1, p.o.BatchBytes, objects)
		if err != nil {
			return nil, oldest, err
		}
		if polled.Outlived {
			// The owner's tenure ended though the store said it
			// held the ip: read again once the store catches up,
			// never taking the range as gone.
			return nil, oldest, errOutlived
		}
		if polled.Next == at { // the log holds no more of the range
			break
		}
		if polled.Next.Epoch != end.Epoch || polled.Next.Seq > end.Seq {
			// Past the range (or into another epoch): the next batch.
			objects = objects[:n]
			break
		}
		if oldest.IsZero() {
			oldest = polled.Oldest
		}
		at = polled.Next
	}
	return objects, oldest, nil
}

// send posts a batch to s's url once, on a worker, once its lease is
// renewed, and within the time the lease has left: no other instance
// takes the lease, and posts the batch, while the POST may still be in
// flight. held is false when the lease was lost, down when the store did
// not answer; nothing was posted then.
func (p *Pusher) send(ctx context.Context, s *Subscription, msgID string, body []byte) (status int, wait time.Duration, result outcome, errText string, held, down bool) {
	select {
	case p.o.Workers <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, unreachable, "stopped", true, false
	}
	defer func() { <-p.o.Workers }()
	start := time.Now()
	if ok, err := p.subs.Lease(ctx, s.ID, p.holder, p.o.LeaseTTL); err != nil || !ok {
		return 0, 0, unreachable, "", false, err != nil
	}
	// The lease lasts LeaseTTL from start at least; a quarter of it is
	// left for the answer to be read and the cursor moved.
	timeout := min(p.o.Timeout, time.Until(start.Add(p.o.LeaseTTL-p.o.LeaseTTL/4)))
	if timeout <= 0 { // the renewal itself took most of the lease
		return 0, 0, unreachable, "", false, false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	status, wait, result, errText = p.attempt(ctx, s, msgID, body)
	if result == timedOut && timeout < p.o.Timeout {
		errText = "no answer within the time the lease had left: make -push-timeout less than half of -push-lease"
	}
	return status, wait, result, errText, true, false
}

// attempt posts body to s's url once, within ctx, and classes the
// answer. wait is how long the receiver asked to be left alone
// (Retry-After on 429 or 503), or 0.
func (p *Pusher) attempt(ctx context.Context, s *Subscription, msgID string, body []byte) (status int, wait time.Duration, result outcome, errText string) {
	start := time.Now()
	status, header, err := p.post(ctx, s, msgID, body)
	p.m.attemptSeconds.UpdateDuration(start)
	if err != nil {
		result = unreachable
		if webhooks.IsRefused(err) {
			result = forbidden
		} else if ctx.Err() != nil {
			result = timedOut
		}
		p.m.attempts[result].Inc()
		return 0, 0, result, p.failure(s, "attempt", err)
	}
	switch {
	case status >= 200 && status < 300:
		result = delivered
	case status == http.StatusGone:
		result = gone
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		result = failed
		if status == http.StatusTooManyRequests {
			result = rateLimited
		}
		if d, ok := webhooks.RetryAfter(header, time.Now()); ok {
			wait, result = d, rateLimited
		}
	case status >= 300 && status < 400:
		result = redirected
	case status >= 400 && status < 500:
		result = refused
	default:
		result = failed
	}
	p.m.attempts[result].Inc()
	if result != delivered {
		errText = webhooks.FailureStatus(status)
	}
	return status, wait, result, errText
}

// post sends body to s's url once, signed anew, until ctx ends, and reads
// the answer (its body capped by the client): a delivery's attempt, on a
// worker, or a subscribe's verification, on a verification slot.
func (p *Pusher) post(ctx context.Context, s *Subscription, msgID string, body []byte) (status int, header http.Header, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	now := time.Now()
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "northd-webhooks")
	req.Header.Set(webhooks.HeaderID, msgID)
	req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(webhooks.HeaderSignature, string(webhooks.SignatureHeader(nil, s.keys(now), msgID, ts, body)))
	resp, err := p.o.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	io.Copy(io.Discard, resp.Body) // capped by the client
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}
