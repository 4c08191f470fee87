// Package push delivers a subsystem's events to its north servers as
// webhooks: POSTs to the north server's own ip, signed as the Standard
// Webhooks specification says, in order, at least once, with retries. A
// north server subscribes with its token; the subscription is its (its
// subsystem, username and ip), not the token's: it survives a re-login,
// pauses while the north server holds no live token, and goes on from
// where it stopped.
//
// Where a webhook may go, how it is signed and when it is retried are
// internal/webhooks'; this package keeps the subscriptions and runs their
// deliveries.
package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	"northd/internal/store"
	"northd/internal/webhooks"
)

// Options are a subsystem's webhook bounds and timings.
type Options struct {
	Subsystem        string
	Batch            int           // events per delivery at most (-push-batch)
	BatchBytes       int           // and about this many bytes
	Timeout          time.Duration // of one attempt (-push-timeout)
	DisableAfter     time.Duration // failing this long without a success disables (-push-disable-after)
	Rate             float64       // deliveries per second per subscription (-push-rate)
	PerNorthServer   int           // subscriptions one north server may hold
	MaxSubscriptions int           // subscriptions of the subsystem
	SecretOverlap    time.Duration // both secrets sign this long after a rotation
	PauseCheck       time.Duration // how often a paused subscription asks whether its north server is back
	MaxResponseBytes int64         // read of a receiver's answer, at most
	Allow            *webhooks.Allow
	Client           *http.Client                    // from Allow: refuses what it does not permit, follows no redirect
	Workers          chan struct{}                   // attempts in flight, shared by every subsystem
	Backoff          func(attempt int) time.Duration // the wait after the attempt-th failure in a row
}

// Pusher is one subsystem's subscriptions and their deliveries.
type Pusher struct {
	o     Options
	hub   *events.Hub
	store store.Store
	log   *slog.Logger
	ctx   context.Context

	mu         sync.Mutex
	subs       map[string]*Subscription
	pending    map[Owner]int // being verified, counted against the bounds
	pendingAll int
	wg         sync.WaitGroup

	m pushMetrics
}

// New keeps the subsystem's subscriptions, delivering from hub as long as
// ctx lasts; st says whether a north server is logged in.
func New(ctx context.Context, o Options, hub *events.Hub, st store.Store, set *metrics.Set, label string, log *slog.Logger) *Pusher {
	p := &Pusher{o: o, hub: hub, store: st, log: log, ctx: ctx, subs: make(map[string]*Subscription)}
	p.m = newPushMetrics(set, label, p)
	return p
}

// Errors of the calls a north server makes, for their answers.
var (
	ErrOff          = errors.New("webhooks are off")
	ErrNotFound     = errors.New("no such subscription")
	ErrTooMany      = errors.New("too many subscriptions")
	ErrNotDisabled  = errors.New("the subscription is not disabled")
	ErrShuttingDown = errors.New("shutting down")
)

// VerifyError is a subscription refused because its url did not take the
// verification event.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string {
	return "the url did not accept the subscription.verify event: " + e.Reason + "; answer it with a 2xx, then subscribe again"
}

// Owner is the north server a subscription belongs to.
type Owner struct {
	Username string
	IP       netip.Addr
}

// Create subscribes the north server o to the events of types (none:
// every type) at url, from now on, once url has taken a signed
// subscription.verify event. It returns the subscription and its secret,
// which is shown this once.
func (p *Pusher) Create(ctx context.Context, o Owner, rawURL string, types []string) (View, string, error) {
	if p.o.Allow == nil || p.o.Allow.Empty() {
		return View{}, "", ErrOff
	}
	u, err := webhooks.CheckURL(rawURL, o.IP, p.o.Allow)
	if err != nil {
		return View{}, "", err
	}
	if err := p.reserve(o); err != nil {
		return View{}, "", err
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		p.release(o)
		return View{}, "", err
	}
	key, _ := webhooks.ParseSecret(secret)
	sub := &Subscription{
		ID: newID(), Owner: o, URL: u.String(), Types: slices.Clone(types), Created: time.Now().UTC(),
		secrets: []signingKey{{key: key}}, wake: make(chan struct{}, 1),
	}
	sub.reader = events.Reader{IP: o.IP, Username: []byte(o.Username), Types: sub.Types}
	if err := p.verify(ctx, sub); err != nil {
		p.release(o)
		return View{}, "", err
	}
	// From now on: the events published from here.
	if sub.cursor, err = p.hub.Now(ctx); err != nil {
		p.release(o)
		return View{}, "", err
	}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		p.release(o)
		return View{}, "", ErrShuttingDown
	}
	p.subs[sub.ID] = sub
	if p.pending[o]--; p.pending[o] <= 0 {
		delete(p.pending, o)
	}
	p.pendingAll--
	var cancel context.CancelFunc
	sub.ctx, cancel = context.WithCancel(p.ctx)
	sub.cancel = cancel
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		p.deliver(sub)
	}()
	p.log.Info("webhook subscription created", "subsystem", p.o.Subsystem, "id", sub.ID, "username", o.Username, "ip", o.IP.String(), "url", sub.URL)
	return sub.view(p.hub), secret, nil
}

// reserve counts a subscription against the bounds before its
// verification, so that concurrent creations cannot pass them together.
func (p *Pusher) reserve(o Owner) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return ErrShuttingDown
	}
	mine := 0
	for _, s := range p.subs {
		if s.Owner == o {
			mine++
		}
	}
	if mine+p.pending[o] >= p.o.PerNorthServer || len(p.subs)+p.pendingAll >= p.o.MaxSubscriptions {
		return ErrTooMany
	}
	if p.pending == nil {
		p.pending = make(map[Owner]int)
	}
	p.pending[o]++
	p.pendingAll++
	return nil
}

func (p *Pusher) release(o Owner) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[o]--; p.pending[o] <= 0 {
		delete(p.pending, o)
	}
	p.pendingAll--
}

// newID is a subscription's id: "sub_" and 24 random hex digits.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return "sub_" + hex.EncodeToString(b[:])
}

// owned is o's subscription id.
func (p *Pusher) owned(o Owner, id string) (*Subscription, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.subs[id]
	if s == nil || s.Owner != o {
		return nil, ErrNotFound
	}
	return s, nil
}

// List is o's subscriptions, oldest first, without their secrets.
func (p *Pusher) List(o Owner) []View {
	var views []View
	for _, s := range p.all() {
		if s.Owner == o {
			views = append(views, s.view(p.hub))
		}
	}
	return views
}

// All is every subscription of the subsystem, oldest first, for the
// operator.
func (p *Pusher) All() []View {
	var views []View
	for _, s := range p.all() {
		views = append(views, s.view(p.hub))
	}
	return views
}

func (p *Pusher) all() []*Subscription {
	p.mu.Lock()
	subs := make([]*Subscription, 0, len(p.subs))
	for _, s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	sort.Slice(subs, func(i, j int) bool {
		if !subs[i].Created.Equal(subs[j].Created) {
			return subs[i].Created.Before(subs[j].Created)
		}
		return subs[i].ID < subs[j].ID
	})
	return subs
}

// Delete ends o's subscription id: no delivery starts for it from now on.
func (p *Pusher) Delete(o Owner, id string) error {
	s, err := p.owned(o, id)
	if err != nil {
		return err
	}
	p.end(s, "deleted by its north server")
	return nil
}

// end removes s and stops its deliveries.
func (p *Pusher) end(s *Subscription, why string) {
	p.mu.Lock()
	delete(p.subs, s.ID)
	p.mu.Unlock()
	s.cancel()
	p.log.Info("webhook subscription ended", "subsystem", p.o.Subsystem, "id", s.ID, "why", why)
}

// Rotate starts a new secret for o's subscription id and returns it; the
// old one signs too for SecretOverlap, so that a receiver can switch.
func (p *Pusher) Rotate(o Owner, id string) (string, error) {
	s, err := p.owned(o, id)
	if err != nil {
		return "", err
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		return "", err
	}
	key, _ := webhooks.ParseSecret(secret)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []signingKey{{key: key}}
	for _, k := range s.secrets {
		if k.until.IsZero() {
			k.until = now.Add(p.o.SecretOverlap)
		}
		if now.Before(k.until) {
			keys = append(keys, k)
		}
	}
	s.secrets = keys
	return secret, nil
}

// Enable takes o's disabled subscription id up again, from its cursor.
func (p *Pusher) Enable(o Owner, id string) (View, error) {
	s, err := p.owned(o, id)
	if err != nil {
		return View{}, err
	}
	s.mu.Lock()
	if s.state != Disabled {
		s.mu.Unlock()
		return View{}, ErrNotDisabled
	}
	s.state = Active
	s.failingSince = time.Time{}
	s.attempt = 0
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return s.view(p.hub), nil
}

// Wait waits until every delivery has stopped, after the context New was
// given ended, or until ctx ends.
func (p *Pusher) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// errorText is what an attempt's error says, for the last_error of a
// subscription, without Go's wrapping noise where it can.
func errorText(err error) string {
	if refused, ok := errors.AsType[*webhooks.RefusedError](err); ok {
		return refused.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within -push-timeout"
	}
	return fmt.Sprint(err)
}
