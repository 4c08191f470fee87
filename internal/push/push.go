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
// deliveries. Where the subscriptions live is a Store: push/memory in this
// process (-store memory), or push/redis, shared by every instance.
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
	Allow            *webhooks.Allow
	Client           *http.Client                    // from Allow: refuses what it does not permit, follows no redirect, caps answers' bodies
	Workers          chan struct{}                   // attempts in flight, shared by every subsystem
	Verifiers        int                             // subscribes' verifications in flight at once, apart from Workers
	VerifyRate       float64                         // verifications per second per north server,
	VerifyBurst      int                             // after a burst of this many
	Backoff          func(attempt int) time.Duration // the wait after the attempt-th failure in a row
	// LeaseTTL is how long an instance delivers for a subscription
	// without renewing its lease: how soon another takes over when it
	// dies (-push-lease). SyncEvery is how often an instance reads the
	// subscriptions others made or ended.
	LeaseTTL  time.Duration
	SyncEvery time.Duration
}

// Pusher is one subsystem's subscriptions and their deliveries on this
// instance: every subscription of the store has a delivery here, which
// delivers only while this instance holds its lease.
type Pusher struct {
	o      Options
	hub    *events.Hub
	tokens store.Store // whether a north server is logged in
	subs   Store
	holder string // this instance, as its leases name it
	log    *slog.Logger
	ctx    context.Context

	mu        sync.Mutex
	local     map[string]*Subscription
	making    map[Owner]int // subscriptions being made here, per north server (reserve)
	makingAll int
	wg        sync.WaitGroup

	verifiers   chan struct{} // verifications in flight
	verifyRates *verifyRates

	m pushMetrics
}

// New keeps the subsystem's subscriptions in subs, delivering from hub as
// long as ctx lasts; tokens says whether a north server is logged in.
func New(ctx context.Context, o Options, hub *events.Hub, tokens store.Store, subs Store, set *metrics.Set, label string, log *slog.Logger) *Pusher {
	var b [8]byte
	rand.Read(b[:])
	p := &Pusher{o: o, hub: hub, tokens: tokens, subs: subs, holder: hex.EncodeToString(b[:]), log: log, ctx: ctx,
		local: make(map[string]*Subscription), making: make(map[Owner]int),
		verifiers: make(chan struct{}, o.Verifiers), verifyRates: newVerifyRates(o.VerifyRate, o.VerifyBurst, maxVerifyRates)}
	p.m = newPushMetrics(set, label, p)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.syncLoop()
	}()
	return p
}

// syncLoop takes up the subscriptions other instances made, and drops
// those they ended, until the instance stops.
func (p *Pusher) syncLoop() {
	t := time.NewTicker(p.o.SyncEvery)
	defer t.Stop()
	lastErr := ""
	for {
		// A failure is logged when it starts or changes, not every
		// turn: a store that is down, or records this instance cannot
		// read (another's secret keys), would otherwise fill the log.
		err := p.sync(p.ctx)
		switch {
		case err != nil && err.Error() != lastErr && p.ctx.Err() == nil:
			p.log.Warn("cannot read the webhook subscriptions; deliveries go on as they were", "subsystem", p.o.Subsystem, "err", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			p.log.Info("webhook subscriptions read again", "subsystem", p.o.Subsystem)
			lastErr = ""
		}
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync makes the local subscriptions the store's.
func (p *Pusher) sync(ctx context.Context) error {
	records, err := p.subs.List(ctx)
	if err != nil {
		return err // deliveries go on as they were
	}
	seen := make(map[string]bool, len(records))
	for _, r := range records {
		seen[r.ID] = true
		p.adopt(r)
	}
	p.mu.Lock()
	var gone []*Subscription
	for id, s := range p.local {
		if !seen[id] {
			gone = append(gone, s)
			delete(p.local, id)
		}
	}
	p.mu.Unlock()
	for _, s := range gone {
		s.cancel()
	}
	return nil
}

// adopt starts the delivery of a subscription this instance has not
// taken up yet, or takes on the settings another instance changed.
func (p *Pusher) adopt(r *Record) *Subscription {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.local[r.ID]; s != nil {
		s.apply(r)
		return s
	}
	if p.ctx.Err() != nil {
		return nil
	}
	s := newSubscription(r)
	s.ctx, s.cancel = context.WithCancel(p.ctx)
	p.local[r.ID] = s
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.deliver(s)
	}()
	return s
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
// which is shown this once. A north server at its limit is refused
// before anything is posted; ErrVerifiersBusy and ErrTooFast ask it to
// retry.
func (p *Pusher) Create(ctx context.Context, o Owner, rawURL string, types []string) (View, string, error) {
	if p.o.Allow == nil || p.o.Allow.Empty() {
		return View{}, "", ErrOff
	}
	if p.ctx.Err() != nil {
		return View{}, "", ErrShuttingDown
	}
	u, err := webhooks.CheckURL(rawURL, o.IP, p.o.Allow)
	if err != nil {
		return View{}, "", err
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		return View{}, "", err
	}
	key, _ := webhooks.ParseSecret(secret)
	if err := p.reserve(o); err != nil {
		return View{}, "", err
	}
	defer p.unreserve(o)
	r := &Record{ID: newID(), Username: o.Username, IP: o.IP, URL: u.String(), Types: slices.Clone(types), Created: time.Now().UTC(), Secrets: []Secret{{Key: key}}}
	if err := p.verify(ctx, newSubscription(r)); err != nil {
		return View{}, "", err
	}
	// From now on: the events published from here.
	cursor, err := p.hub.Now(ctx)
	if err != nil {
		return View{}, "", err
	}
	if err := p.subs.Create(ctx, r, cursor, p.o.PerNorthServer, p.o.MaxSubscriptions); err != nil {
		return View{}, "", err
	}
	s := p.adopt(r)
	if s == nil {
		return View{}, "", ErrShuttingDown
	}
	p.log.Info("webhook subscription created", "subsystem", p.o.Subsystem, "id", r.ID, "username", o.Username, "ip", o.IP.String(), "url", r.URL)
	return s.view(p.hub), secret, nil
}

// newID is a subscription's id: "sub_" and 24 random hex digits.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return "sub_" + hex.EncodeToString(b[:])
}

// owned is o's subscription id, read from the store first when this
// instance has not taken it up yet (it was made on another).
func (p *Pusher) owned(ctx context.Context, o Owner, id string) (*Subscription, error) {
	for try := 0; try < 2; try++ {
		p.mu.Lock()
		s := p.local[id]
		p.mu.Unlock()
		if s != nil && s.Owner == o {
			return s, nil
		}
		if try == 0 {
			if err := p.sync(ctx); err != nil {
				// Not "no such subscription": it may well exist.
				return nil, fmt.Errorf("%w: %v", events.ErrUnavailable, err)
			}
		}
	}
	return nil, ErrNotFound
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
	subs := make([]*Subscription, 0, len(p.local))
	for _, s := range p.local {
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

// Delete ends o's subscription id: no delivery starts for it from now on
// (on another instance, none after its next sync).
func (p *Pusher) Delete(ctx context.Context, o Owner, id string) error {
	s, err := p.owned(ctx, o, id)
	if err != nil {
		return err
	}
	if _, err := p.subs.Delete(ctx, id); err != nil {
		return err
	}
	p.end(s, "deleted by its north server")
	return nil
}

// end stops s's deliveries here; its record is gone from the store.
func (p *Pusher) end(s *Subscription, why string) {
	p.mu.Lock()
	delete(p.local, s.ID)
	p.mu.Unlock()
	s.cancel()
	p.log.Info("webhook subscription ended", "subsystem", p.o.Subsystem, "id", s.ID, "why", why)
}

// Rotate starts a new secret for o's subscription id and returns it; the
// one before signs too for SecretOverlap, so that a receiver can switch.
// Older ones stop: two secrets at most, whatever the rotations, so that a
// record (which every instance reads) and each signature header stay
// small.
func (p *Pusher) Rotate(ctx context.Context, o Owner, id string) (string, error) {
	s, err := p.owned(ctx, o, id)
	if err != nil {
		return "", err
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		return "", err
	}
	key, _ := webhooks.ParseSecret(secret)
	now := time.Now()
	r := s.record()
	keys := []Secret{{Key: key}}
	if len(r.Secrets) > 0 { // the newest first
		keys = append(keys, Secret{Key: r.Secrets[0].Key, Until: now.Add(p.o.SecretOverlap)})
	}
	r.Secrets = keys
	if err := p.save(ctx, s, r); err != nil {
		return "", err
	}
	return secret, nil
}

// Enable takes o's disabled subscription id up again, from its cursor.
func (p *Pusher) Enable(ctx context.Context, o Owner, id string) (View, error) {
	s, err := p.owned(ctx, o, id)
	if err != nil {
		return View{}, err
	}
	r := s.record()
	if !r.Disabled {
		return View{}, ErrNotDisabled
	}
	r.Disabled = false
	// The stored failing time first, while no instance delivers: the
	// next failure, on any instance, starts -push-disable-after again.
	if err := p.subs.ClearFailing(ctx, id); err != nil {
		return View{}, err
	}
	if err := p.save(ctx, s, r); err != nil {
		return View{}, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return s.view(p.hub), nil
}

// save writes r, s's changed settings, to the store and takes them here.
func (p *Pusher) save(ctx context.Context, s *Subscription, r *Record) error {
	found, err := p.subs.Update(ctx, r)
	if err != nil {
		return err
	}
	if !found {
		p.end(s, "gone from the store")
		return ErrNotFound
	}
	s.apply(r)
	return nil
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

// failure is an attempt's error as the north server sees it, in a
// subscription's last_error and the answer to a subscribe: a category
// (webhooks.Failure). The error itself, which may quote what answered,
// goes to the log, for the operator.
func (p *Pusher) failure(s *Subscription, what string, err error) string {
	p.log.Info("webhook "+what+" failed", "subsystem", p.o.Subsystem, "id", s.ID, "url", s.URL, "err", err)
	return webhooks.Failure(err)
}
