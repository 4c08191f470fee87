package push

import (
	"bytes"
	"context"
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
// it, and only then the cursor moved past it. An instance that loses the
// lease (it stalled, or the store did) drops its batch: the new holder
// posts it again from the cursor (at least once, the same webhook-id).
func (p *Pusher) deliver(s *Subscription) {
	ctx := s.ctx
	limit := rate.NewLimiter(rate.Limit(p.o.Rate), 1)
	var batch []byte // the batch being delivered: the same bytes, and id, until taken
	var next events.ID
	var msgID string
	var oldest time.Time // when the batch's first event was published
	holding := false
	lose := func() {
		holding, batch = false, nil
		s.mu.Lock()
		s.holding, s.state = false, Active
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
		// Each turn renews the lease; no turn lasts longer than a
		// third of it.
		ok, err := p.subs.Lease(ctx, s.ID, p.holder, p.o.LeaseTTL)
		if err != nil || !ok {
			lose()
			p.pause(ctx, p.o.LeaseTTL/3)
			continue
		}
		if !holding {
			cursor, found, err := p.subs.Cursor(ctx, s.ID)
			if err != nil || !found {
				p.pause(ctx, p.o.LeaseTTL/3)
				continue
			}
			s.mu.Lock()
			s.cursor, s.holding = cursor, true
			s.mu.Unlock()
			holding = true
		}
		s.mu.Lock()
		cursor := s.cursor
		s.mu.Unlock()
		if batch == nil {
			// The events to the owner's ip while no one held it are
			// its when its login was the next there: the batch is
			// read in the tenure it holds, and only while it holds
			// the ip, so that none of its own is passed over.
			tenure, live := p.ownerTenure(ctx, s)
			if !live {
				p.setState(s, Paused)
				p.pause(ctx, min(p.o.PauseCheck, p.o.LeaseTTL/3))
				continue
			}
			s.reader.Tenure = tenure
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
			if len(objects) == 1 {
				// Nothing for it: the events passed over were not its.
				if n != cursor {
					if ok, _ := p.subs.Advance(ctx, s.ID, p.holder, n); ok {
						s.mu.Lock()
						s.cursor = n
						s.mu.Unlock()
					}
				}
				continue
			}
			objects[len(objects)-1] = ']' // the last comma
			batch, next, oldest = objects, n, polled.Oldest
			// The same id for every attempt of the batch, on any
			// instance, so that a receiver can tell a redelivery.
			msgID = "msg_" + s.ID + "_" + next.String()
		}
		// A north server that is logged out receives nothing until it
		// logs in again; the batch waits for it.
		if holder, live, _, err := p.tokens.Holder(ctx, s.Owner.IP, time.Now()); err != nil || !live || holder != s.Owner.Username {
			p.setState(s, Paused)
			p.pause(ctx, min(p.o.PauseCheck, p.o.LeaseTTL/3))
			continue
		}
		p.setState(s, Active)
		if limit.Wait(ctx) != nil {
			return
		}
		status, wait, result, errText := p.attempt(ctx, s, msgID, batch)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		s.mu.Lock()
		s.lastAttempt, s.lastStatus, s.lastError = now, status, errText
		s.mu.Unlock()
		switch result {
		case delivered:
			if ok, _ := p.subs.Advance(ctx, s.ID, p.holder, next); !ok {
				lose() // another instance took over; it posts this batch again
				continue
			}
			s.mu.Lock()
			s.cursor, s.attempt, s.failingSince = next, 0, time.Time{}
			s.deliveries++
			s.mu.Unlock()
			if !oldest.IsZero() { // zero: a batch of a reset alone
				p.m.deliverySeconds.Update(now.Sub(oldest).Seconds())
			}
			batch = nil
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
		if ok, err := p.subs.Lease(ctx, s.ID, p.holder, p.o.LeaseTTL); err != nil || !ok {
			return false
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

// attempt posts body to s's url once, signed anew, and classes the answer.
// wait is how long the receiver asked to be left alone (Retry-After on 429
// or 503), or 0.
func (p *Pusher) attempt(ctx context.Context, s *Subscription, msgID string, body []byte) (status int, wait time.Duration, result outcome, errText string) {
	select {
	case p.o.Workers <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, unreachable, "stopped"
	}
	defer func() { <-p.o.Workers }()
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, unreachable, err.Error()
	}
	now := time.Now()
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "northd-webhooks")
	req.Header.Set(webhooks.HeaderID, msgID)
	req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(webhooks.HeaderSignature, string(webhooks.SignatureHeader(nil, s.keys(now), msgID, ts, body)))
	start := time.Now()
	resp, err := p.o.Client.Do(req)
	p.m.attemptSeconds.UpdateDuration(start)
	if err != nil {
		result = unreachable
		if webhooks.IsRefused(err) {
			result = forbidden
		} else if ctx.Err() != nil {
			result = timedOut
		}
		p.m.attempts[result].Inc()
		return 0, 0, result, errorText(err)
	}
	io.Copy(io.Discard, resp.Body) // capped by the client
	resp.Body.Close()
	status = resp.StatusCode
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
		if d, ok := webhooks.RetryAfter(resp.Header, time.Now()); ok {
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
		errText = "answered " + strconv.Itoa(status) + " " + http.StatusText(status)
	}
	return status, wait, result, errText
}

// verify sends the new subscription its one subscription.verify event,
// signed as every delivery will be, and wants a 2xx back.
func (p *Pusher) verify(ctx context.Context, s *Subscription) error {
	now := time.Now().UTC()
	ev := events.Event{ID: events.ID{Epoch: "verify", Seq: 0}, Type: "subscription.verify", Time: now,
		Data: []byte(`{"subscription":"` + s.ID + `"}`)}
	body := append(events.AppendEventJSON([]byte{'['}, &ev, p.o.Subsystem), ']')
	status, _, result, errText := p.attempt(ctx, s, "msg_"+s.ID+"_verify", body)
	if result != delivered {
		if errText == "" {
			errText = "answered " + strconv.Itoa(status)
		}
		return &VerifyError{Reason: errText}
	}
	return nil
}
