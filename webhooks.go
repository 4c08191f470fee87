package main

import (
	"context"
	"crypto/x509"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/config"
	"northd/internal/events"
	"northd/internal/push"
	pushmemory "northd/internal/push/memory"
	pushredis "northd/internal/push/redis"
	"northd/internal/redisconn"
	"northd/internal/store"
	"northd/internal/webhooks"
)

// webhookSetup is what every subsystem's webhooks share: where they may go,
// the client that goes there, and the attempts in flight.
type webhookSetup struct {
	cfg        config.Config
	allow      *webhooks.Allow
	workers    chan struct{}
	client     *http.Client
	secretKeys *pushredis.SecretKeys // seal the secrets kept in a shared store; nil: in clear
}

// The bounds of webhooks that are not flags.
const (
	pushBatchBytes       = 256 << 10
	pushPerNorthServer   = 10
	pushMaxResponseBytes = 64 << 10
	// A subscribe's verification runs on one of pushVerifiers slots of
	// its subsystem, apart from the delivery workers, and a north server
	// verifies pushVerifyBurst urls at once, then one a second: the
	// Retry-After of 1 its refusals carry.
	pushVerifiers   = 8
	pushVerifyRate  = 1
	pushVerifyBurst = 3
)

// newWebhooks is nil when -push-allow lists no network: webhooks are off.
func newWebhooks(cfg config.Config) (*webhookSetup, error) {
	if len(cfg.Push.Allow) == 0 {
		return nil, nil
	}
	list := make([]string, len(cfg.Push.Allow))
	for i, p := range cfg.Push.Allow {
		list[i] = p.String()
	}
	allow, err := webhooks.ParseAllow(list)
	if err != nil {
		return nil, config.Usagef("-push-allow: %v", err)
	}
	o := webhooks.ClientOptions{Timeout: cfg.Push.Timeout, MaxResponseBytes: pushMaxResponseBytes}
	if cfg.Push.CAFile != "" {
		pem, err := os.ReadFile(cfg.Push.CAFile)
		if err != nil {
			return nil, config.Usagef("cannot read -push-ca: %v", err)
		}
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return nil, config.Usagef("-push-ca %s holds no PEM certificate", cfg.Push.CAFile)
		}
	}
	w := &webhookSetup{cfg: cfg, allow: allow, workers: make(chan struct{}, cfg.Push.Workers), client: allow.Client(o)}
	if f := cfg.Push.SecretKeyFile; f != "" {
		text, err := os.ReadFile(f)
		if err != nil {
			return nil, config.Usagef("cannot read -push-secret-key-file: %v", err)
		}
		if w.secretKeys, err = pushredis.ParseSecretKeys(string(text)); err != nil {
			return nil, config.Usagef("-push-secret-key-file %s: %v", f, err)
		}
	}
	return w, nil
}

// pusher is the subsystem named name's webhooks, delivering its hub's
// events while ctx lasts.
func (w *webhookSetup) pusher(ctx context.Context, name string, hub *events.Hub, st store.Store, shared *redisconn.Conn, set *metrics.Set, log *slog.Logger) *push.Pusher {
	p := w.cfg.Push
	// Subscriptions live where tokens do: in this process, or in the
	// shared store, where every instance sees them and one at a time
	// delivers for each.
	var subs push.Store = pushmemory.New()
	if shared != nil {
		subs = pushredis.New(shared, name, w.cfg.StoreTimeout, w.secretKeys)
	}
	return push.New(ctx, push.Options{
		Subsystem:        name,
		Batch:            p.Batch,
		BatchBytes:       pushBatchBytes,
		Timeout:          p.Timeout,
		DisableAfter:     p.DisableAfter,
		Rate:             p.Rate,
		PerNorthServer:   pushPerNorthServer,
		MaxSubscriptions: p.MaxSubscriptions,
		SecretOverlap:    24 * time.Hour,
		PauseCheck:       time.Second,
		Allow:            w.allow,
		Client:           w.client,
		Workers:          w.workers,
		Verifiers:        pushVerifiers,
		VerifyRate:       pushVerifyRate,
		VerifyBurst:      pushVerifyBurst,
		Backoff:          func(attempt int) time.Duration { return min(webhooks.Backoff(attempt, rand.Float64), p.MaxBackoff) },
		LeaseTTL:         p.Lease,
		SyncEvery:        time.Second,
	}, hub, st, subs, set, subsystemLabel(name), log)
}
