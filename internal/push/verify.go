package push

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"northd/internal/events"
	"northd/internal/webhooks"
)

// A subscribe POSTs its subscription.verify event before the subscription
// exists, to a url its north server chose: one that may accept and never
// answer. Verifications therefore run apart from the deliveries, on their
// own few slots (Options.Verifiers), never on the delivery workers; a
// subscribe that finds them all taken, or whose north server subscribes
// faster than Options.VerifyRate, is answered at once to retry, not
// queued; and one over its north server's limit is refused before any
// POST.

// Errors of a subscribe refused for now, to retry after a second.
var (
	ErrVerifiersBusy = errors.New("every verification slot is taken")
	ErrTooFast       = errors.New("this north server subscribes too fast")
)

// maxVerifyRates bounds the north servers whose verification rates are
// kept at once.
const maxVerifyRates = 4096

// verifyRates are the north servers' rates of verifications, at most max
// of them. A limiter back to its full burst limits nothing, so it is
// forgotten when room is needed.
type verifyRates struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[Owner]*rate.Limiter
}

func newVerifyRates(perSecond float64, burst, max int) *verifyRates {
	return &verifyRates{limit: rate.Limit(perSecond), burst: burst, max: max, m: make(map[Owner]*rate.Limiter)}
}

// allow takes one of o's verifications at now: ErrTooFast past its rate,
// ErrVerifiersBusy when max other north servers are verifying this fast.
func (r *verifyRates) allow(o Owner, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.m[o]
	if l == nil {
		if len(r.m) >= r.max {
			for k, l := range r.m {
				if l.TokensAt(now) >= float64(r.burst) {
					delete(r.m, k)
				}
			}
			if len(r.m) >= r.max {
				return ErrVerifiersBusy
			}
		}
		l = rate.NewLimiter(r.limit, r.burst)
		r.m[o] = l
	}
	if !l.AllowN(now, 1) {
		return ErrTooFast
	}
	return nil
}

// reserve counts a subscription of o in the making against its north
// server's limit and the subsystem's, or refuses it (ErrTooMany): the
// subscriptions this instance knows and those being made here. The
// store's Create checks again, atomically, with every instance's.
func (p *Pusher) reserve(o Owner) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	mine := p.making[o]
	for _, s := range p.local {
		if s.Owner == o {
			mine++
		}
	}
	if mine >= p.o.PerNorthServer || len(p.local)+p.makingAll >= p.o.MaxSubscriptions {
		return ErrTooMany
	}
	p.making[o]++
	p.makingAll++
	return nil
}

// unreserve ends what reserve counted, once the subscription is made
// (and counted among the local ones) or refused.
func (p *Pusher) unreserve(o Owner) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.making[o]--; p.making[o] == 0 {
		delete(p.making, o)
	}
	p.makingAll--
}

// verify sends the new subscription its one subscription.verify event,
// signed as every delivery will be, on a verification slot, and wants a
// 2xx back.
func (p *Pusher) verify(ctx context.Context, s *Subscription) error {
	if err := p.verifyRates.allow(s.Owner, time.Now()); err != nil {
		return err
	}
	select {
	case p.verifiers <- struct{}{}:
	default:
		return ErrVerifiersBusy
	}
	defer func() { <-p.verifiers }()
	now := time.Now().UTC()
	ev := events.Event{ID: events.ID{Epoch: "verify", Seq: 0}, Type: "subscription.verify", Time: now,
		Data: []byte(`{"subscription":"` + s.ID + `"}`)}
	body := append(events.AppendEventJSON([]byte{'['}, &ev, p.o.Subsystem), ']')
	within, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	status, _, err := p.post(within, s, "msg_"+s.ID+"_verify", body)
	switch {
	case err != nil && (ctx.Err() != nil || p.ctx.Err() != nil):
		return ErrShuttingDown
	case err != nil:
		return &VerifyError{Reason: p.failure(s, "verification", err)}
	case status < 200 || status > 299:
		return &VerifyError{Reason: webhooks.FailureStatus(status)}
	}
	return nil
}
