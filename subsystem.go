package main

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/auth"
	"northd/internal/config"
	"northd/internal/events"
	"northd/internal/netx"
	"northd/internal/push"
	"northd/internal/store"
	"northd/internal/wire"
)

// subsystem is one login endpoint on its own port with its own store of
// north servers, the seed's "subsystem" whose request handler records the
// north server so that data can be pushed to it: its events reach the north
// servers over GET /north/events.
type subsystem struct {
	name        string              // NAME= in -listen, or else the port
	store       store.Store         // tokens and north servers: this process's, or shared (-store)
	auth        *auth.Authenticator // shared by every subsystem; nil in open mode
	proxies     netx.ClientAddrs
	maxBodySize int
	rejections  *wire.RejectionBodies
	log         *slog.Logger
	metrics     *subsystemMetrics
	server      *fasthttp.Server
	events      *events.Hub // the subsystem's event log, fanned out to its streams
	streamHead  []byte      // the start of every event stream's response
	// streamUserTimeout is how long a stream's written data may wait
	// for its client's ack before the kernel ends the connection.
	streamUserTimeout time.Duration
	push              *push.Pusher   // webhook subscriptions; nil with webhooks off
	conns             *netx.Listener // counts, limits and refuses connections
	listener          net.Listener   // conns, or TLS around it

	// draining is shared by every subsystem of the process: set when
	// shutdown begins, it turns /readyz to 503.
	draining *atomic.Bool
}

// newSubsystem serves on ln, over TLS when tlsConfig is not nil, with its
// tokens and north servers in st.
func newSubsystem(cfg config.Config, name string, ln net.Listener, draining *atomic.Bool, authn *auth.Authenticator, st store.Store, evs *events.Hub, tlsConfig *tls.Config, set *metrics.Set, log *slog.Logger) *subsystem {
	s := &subsystem{
		name:        name,
		store:       st,
		auth:        authn,
		proxies:     netx.NewClientAddrs(cfg.TrustedProxies, cfg.ClientIPHeader),
		maxBodySize: cfg.MaxBodySize,
		events:      evs,
		streamHead:  streamHead(cfg.Events.Retry),
		// -event-write-timeout: a client that takes no data for this
		// long is dropped, even when what it did not take fitted in
		// the send buffer.
		streamUserTimeout: cfg.Events.WriteTimeout,
		rejections:        wire.NewRejectionBodies(cfg.MaxBodySize),
		log:               log,
		draining:          draining,
	}
	s.metrics = newSubsystemMetrics(set, name)
	s.conns = netx.NewListener(ln, netx.ListenerOptions{
		MaxConns:           cfg.MaxConns,
		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		IPv6Prefix:         cfg.IPv6Prefix,
		ProxyProtocolFrom:  cfg.ProxyProtocolFrom,
		ProxyHeaderTimeout: cfg.ReadTimeout,
		// Under TLS a refusal would need the handshake first.
		AnswerRefusals: tlsConfig == nil,
		LingerTimeout:  cfg.LingerTimeout,
	}, log)
	s.conns.RegisterMetrics(set, subsystemLabel(name))
	s.listener = s.conns
	if tlsConfig != nil {
		// Above the connection listener: a PROXY header comes before
		// the TLS handshake.
		s.listener = tls.NewListener(s.conns, tlsConfig)
	}
	s.server = &fasthttp.Server{
		Handler:                      s.routes(),
		ErrorHandler:                 s.handleRequestError,
		ExpectHandler:                s.handleExpect,
		Logger:                       fasthttpLogger{log: log, subsystem: name},
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
