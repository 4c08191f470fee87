package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/auth"
	"northd/internal/config"
	"northd/internal/events"
	eventsmemory "northd/internal/events/memory"
	eventsredis "northd/internal/events/redis"
	"northd/internal/httpx"
	"northd/internal/netx"
	"northd/internal/push"
	pushmemory "northd/internal/push/memory"
	pushredis "northd/internal/push/redis"
	"northd/internal/redisconn"
	"northd/internal/store"
	"northd/internal/store/memory"
	redisstore "northd/internal/store/redis"
	"northd/internal/webhooks"
	"northd/internal/wire"
)

// subsystem is one login endpoint on its own port with its own store of
// north servers, the seed's "subsystem" whose request handler records the
// north server so that data can be pushed to it: its events reach the north
// servers over GET /north/events, and over webhooks.
type subsystem struct {
	name        string              // NAME= in -listen, or else the port
	store       store.Store         // tokens and north servers: this process's, or shared (-store)
	tokens      httpx.Tokens        // the bearer-token check against store
	auth        *auth.Authenticator // shared by every subsystem; nil in open mode
	proxies     netx.ClientAddrs
	maxBodySize int
	rejections  *wire.RejectionBodies
	log         *slog.Logger
	metrics     *subsystemMetrics
	server      *fasthttp.Server
	events      *events.Hub  // the subsystem's event log, fanned out to its streams
	push        *push.Pusher // webhook subscriptions; nil with webhooks off
	// streamRetry and streamUserTimeout are -event-retry and
	// -event-write-timeout, for GET /north/events.
	streamRetry, streamUserTimeout time.Duration
	conns                          *netx.Listener // counts, limits and refuses connections
	listener                       net.Listener   // conns, or TLS around it

	// draining is shared by every subsystem of the process: set when
	// shutdown begins, it turns /readyz to 503.
	draining *atomic.Bool
}

// common is what every subsystem of an instance shares.
type common struct {
	cfg       config.Config
	draining  *atomic.Bool
	auth      *auth.Authenticator // nil in open mode
	shared    *redisconn.Conn     // the shared store (-store); nil: each subsystem's is in memory
	webhooks  *webhookSetup       // nil: webhooks are off
	tlsConfig *tls.Config         // nil without TLS
	set       *metrics.Set
	log       *slog.Logger
}

// newSubsystem is the subsystem named name serving on ln, whole: its
// store, its events' hub, its webhooks (delivering while ctx lasts) and
// its handler. Its hub runs, and its server serves, once start says so.
func newSubsystem(ctx context.Context, c common, name string, ln net.Listener) *subsystem {
	cfg := c.cfg
	label := subsystemLabel(name)
	s := &subsystem{
		name:              name,
		store:             subsystemStore(c, name),
		auth:              c.auth,
		proxies:           netx.NewClientAddrs(cfg.TrustedProxies, cfg.ClientIPHeader),
		maxBodySize:       cfg.MaxBodySize,
		streamRetry:       cfg.Events.Retry,
		streamUserTimeout: cfg.Events.WriteTimeout,
		rejections:        wire.NewRejectionBodies(cfg.MaxBodySize),
		log:               c.log,
		metrics:           newSubsystemMetrics(c.set, name),
		draining:          c.draining,
	}
	s.tokens = httpx.Tokens{Store: s.store, StoreUnavailable: s.metrics.storeUnavailable}
	s.events = subsystemEvents(c, name, s.store)
	if c.webhooks != nil {
		s.push = c.webhooks.pusher(ctx, c, name, s.events, s.store)
	}
	s.conns = netx.NewListener(ln, netx.ListenerOptions{
		MaxConns:           cfg.MaxConns,
		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		IPv6Prefix:         cfg.IPv6Prefix,
		ProxyProtocolFrom:  cfg.ProxyProtocolFrom,
		ProxyHeaderTimeout: cfg.ReadTimeout,
		// Under TLS a refusal would need the handshake first.
		AnswerRefusals: c.tlsConfig == nil,
		LingerTimeout:  cfg.LingerTimeout,
	}, c.log)
	s.conns.RegisterMetrics(c.set, label)
	s.listener = s.conns
	if c.tlsConfig != nil {
		// Above the connection listener: a PROXY header comes before
		// the TLS handshake.
		s.listener = tls.NewListener(s.conns, c.tlsConfig)
	}
	s.server = &fasthttp.Server{
		Handler:                      s.routes(),
		ErrorHandler:                 s.handleRequestError,
		ExpectHandler:                s.handleExpect,
		Logger:                       fasthttpLogger{log: c.log, subsystem: name},
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		// Event streams are hijacked and live on after their handler:
		// their hub closes them.
		KeepHijackedConns:  true,
		MaxRequestBodySize: cfg.MaxBodySize,
		ReadTimeout:        cfg.ReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		Concurrency:        netx.FasthttpConcurrency(cfg.MaxConns),
		ReduceMemoryUsage:  cfg.ReduceMemory,
	}
	return s
}

// listenAddr is the address the subsystem listens on, with the real port
// when -listen asked for port 0.
func (s *subsystem) listenAddr() string { return s.listener.Addr().String() }

// subsystemStore is where the subsystem named name keeps its tokens and
// north servers: its part of the shared store, or a memory store of its
// own.
func subsystemStore(c common, name string) store.Store {
	label := subsystemLabel(name)
	if c.shared != nil {
		o := redisstore.Options{CallTimeout: c.cfg.StoreTimeout, Max: c.cfg.RegistryMax, MaxPerUser: c.cfg.IPsPerUser(), TokenTTL: c.cfg.TokenTTL}
		return redisstore.New(c.shared, name, o, c.set, label)
	}
	m := memory.New(memory.Options{Max: c.cfg.RegistryMax, MaxPerUser: c.cfg.IPsPerUser(), TokenTTL: c.cfg.TokenTTL})
	m.RegisterMetrics(c.set, label)
	return m
}

// An instance keeps the newest events of each subsystem encoded for its
// streams, within these bounds; older ones are read from the log.
const (
	eventCacheEvents = 16384
	eventCacheBytes  = 32 << 20
	// drainRetry is the retry: a stream closed by a shutdown ends with,
	// so that its client reconnects, through the balancer, at once.
	drainRetry = 250 * time.Millisecond
)

// subsystemEvents is the hub that fans the subsystem's events out to its
// streams: from its stream in the shared Redis, or from a memory log of
// its own. A stream lasts as long as its token stays live in st.
func subsystemEvents(c common, name string, st store.Store) *events.Hub {
	e := c.cfg.Events
	var l events.Log
	if c.shared != nil {
		l = eventsredis.New(c.shared, name, eventsredis.Options{Retention: e.Retention, CallTimeout: c.cfg.StoreTimeout})
	} else {
		l = eventsmemory.New(eventsmemory.Options{Retention: e.Retention, MaxBytes: e.LogBytes})
	}
	return events.NewHub(l, events.HubOptions{
		Subsystem:    name,
		Heartbeat:    e.Heartbeat,
		Retry:        e.Retry,
		DrainRetry:   drainRetry,
		WriteTimeout: e.WriteTimeout,
		Queue:        e.Queue,
		MaxStreams:   e.MaxStreams,
		MaxPerToken:  e.StreamsPerToken,
		CacheEvents:  min(e.Retention, eventCacheEvents),
		CacheBytes:   min(e.LogBytes, eventCacheBytes),
		TokenLive: func(token [16]byte, now time.Time) bool {
			v, err := st.Verify(token, now, make([]byte, 0, 64))
			// A store that does not answer ends no stream: the
			// token is checked again at the next heartbeat.
			return err != nil || v.Result == store.Valid
		},
	}, c.set, subsystemLabel(name), c.log)
}

// webhookSetup is what every subsystem's webhooks share: where they may go,
// the client that goes there, and the attempts in flight.
type webhookSetup struct {
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
	w := &webhookSetup{allow: allow, workers: make(chan struct{}, cfg.Push.Workers), client: allow.Client(o)}
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
func (w *webhookSetup) pusher(ctx context.Context, c common, name string, hub *events.Hub, st store.Store) *push.Pusher {
	p := c.cfg.Push
	// Subscriptions live where tokens do: in this process, or in the
	// shared store, where every instance sees them and one at a time
	// delivers for each.
	var subs push.Store = pushmemory.New()
	if c.shared != nil {
		subs = pushredis.New(c.shared, name, c.cfg.StoreTimeout, w.secretKeys)
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
	}, hub, st, subs, c.set, subsystemLabel(name), c.log)
}
