package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp/prefork"

	"northd/internal/admin"
	"northd/internal/auth"
	"northd/internal/config"
	"northd/internal/netx"
	"northd/internal/redisconn"
)

// run is northd hash-password or, started by northd itself, northd
// check-passwords (internal/auth) when args say so, and otherwise starts
// northd as the command line and environment say, serves until
// ctx is cancelled (main cancels it on SIGINT or SIGTERM), then drains and
// shuts down. It returns nil after a clean shutdown, a usageError for bad
// flags, and another error when northd cannot start or stop cleanly.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "hash-password" {
		return authUsage(auth.RunHashPassword(args[1:], stdin, stdout, stderr))
	}
	if len(args) > 0 && args[0] == auth.CheckPasswordsCommand {
		return authUsage(auth.RunCheckPasswords(args[1:], stdin, stdout, stderr))
	}
	cfg, err := config.Parse(args, lookupEnv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.ShowVersion {
		fmt.Fprintln(stdout, readBuildInfo())
		return nil
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if cfg.Prefork && !prefork.IsChild() {
		return runPreforkMaster(ctx, args, cfg, stdout, stderr, log)
	}
	// Asked for before start, so that a SIGHUP from the moment northd
	// serves reloads instead of ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := start(ctx, cfg, log, hup)
	if err != nil {
		return err
	}
	return srv.wait()
}

// instance is a running northd: its subsystems and admin listener.
type instance struct {
	ctx        context.Context
	cfg        config.Config
	log        *slog.Logger
	subsystems []*subsystem
	admin      *http.Server
	adminAddr  string
	draining   *atomic.Bool
	serveErrs  chan error
	auth       *auth.Authenticator // nil in open mode
	cert       *certificate        // nil without TLS

	reloadsOK, reloadsFailed *metrics.Counter
	cancel                   context.CancelFunc // ends ctx: the instance stopped
	// closers undo what start set up, in reverse: for a start that
	// failed partway and for a shutdown alike.
	closers closers
}

// closers are what to undo, in the order it was set up.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

// close runs them, the last added first.
func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// start sets northd up as cfg says and serves, until wait is called, on
// the listeners it has taken. Each value from hup reloads the users file
// and the TLS certificate (a nil hup reloads never).
func start(parent context.Context, cfg config.Config, log *slog.Logger, hup <-chan os.Signal) (srv *instance, err error) {
	// What start has set up is undone if it fails partway, and by wait
	// once it has shut the servers down.
	var undo closers
	defer func() {
		if err != nil {
			undo.close()
		}
	}()
	set := metrics.NewSet()
	readBuildInfo().register(set)
	// Credentials and certificates are read before any port is taken,
	// so that a bad file stops northd before a balancer sees it.
	var authn *auth.Authenticator
	if cfg.Users != "" {
		if authn, err = newAuthenticator(cfg, set, log); err != nil {
			return nil, err
		}
		undo.add(authn.Stop)
		set.NewGauge(`northd_auth_mode{mode="users"}`, func() float64 { return 1 })
	} else {
		set.NewGauge(`northd_auth_mode{mode="open"}`, func() float64 { return 1 })
		log.Warn("open mode: any non-empty username and password log in; give -users FILE to check credentials")
	}
	var cert *certificate
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		if cert, err = newCertificate(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, config.Usagef("%v", err)
		}
		tlsConfig = cert.serverConfig()
	}
	adminSecrets, err := admin.ReadTokens(cfg.Events.AdminTokenFile)
	if err != nil {
		return nil, err
	}

	var redis *redisconn.Conn
	if cfg.Store != "memory" {
		if redis, err = redisconn.Open(cfg.Store, set, log); err != nil {
			if _, invalid := errors.AsType[*redisconn.InvalidURLError](err); invalid {
				return nil, config.Usagef("%v", err)
			}
			return nil, err
		}
		undo.add(redis.Close)
	}

	cfg.MaxConns = netx.MaxConnsForDescriptors(cfg.MaxConns, cfg.MaxConnsGiven, len(cfg.Listen), log)
	listeners, err := netx.ListenAll(cfg.Listen, cfg.ReusePort)
	if err != nil {
		return nil, err
	}
	undo.add(func() {
		for _, ln := range listeners {
			ln.Close()
		}
	})
	names, err := subsystemNames(cfg, listeners)
	if err != nil {
		return nil, err
	}
	var adminLn net.Listener
	if cfg.Admin != "" {
		if adminLn, err = netx.Listen(cfg.Admin, false); err != nil {
			return nil, err
		}
		undo.add(func() { adminLn.Close() })
	}

	webhooks, err := newWebhooks(cfg)
	if err != nil {
		return nil, err
	}
	if webhooks != nil && redis != nil && webhooks.secretKeys == nil {
		log.Warn("webhook secrets are kept in Redis in clear: whoever reads Redis can sign webhooks to north servers; give every instance -push-secret-key-file to seal them")
	}
	// The instance's own context ends when it stops, whatever ended it,
	// so that its background work (store pings, SIGHUP) ends with it.
	ctx, cancel := context.WithCancel(parent)
	srv = &instance{
		ctx:           ctx,
		cancel:        cancel,
		cfg:           cfg,
		log:           log,
		draining:      new(atomic.Bool),
		subsystems:    make([]*subsystem, len(listeners)),
		serveErrs:     make(chan error, len(listeners)+1),
		auth:          authn,
		cert:          cert,
		reloadsOK:     set.NewCounter(`northd_reloads_total{result="ok"}`),
		reloadsFailed: set.NewCounter(`northd_reloads_total{result="failed"}`),
	}
	c := common{cfg: cfg, draining: srv.draining, auth: authn, shared: redis, webhooks: webhooks, tlsConfig: tlsConfig, set: set, log: log}
	for i, ln := range listeners {
		srv.subsystems[i] = newSubsystem(ctx, c, names[i], ln)
	}
	if redis != nil {
		go redis.Watch(ctx)
	}
	go srv.reloadOnHangup(hup)
	for _, s := range srv.subsystems {
		go s.events.Run(ctx)
		go func() {
			if err := s.server.Serve(s.listener); err != nil {
				srv.serveErrs <- fmt.Errorf("subsystem %s stopped serving: %w", s.name, err)
			}
		}()
	}
	adminAddr := "disabled"
	if adminLn != nil {
		// The public ports' -read-timeout and -idle-timeout hold here
		// too; -write-timeout is set per answer (admin.WithWriteDeadlines).
		srv.admin = &http.Server{
			Handler:           adminRoutes(srv.subsystems, set, cfg.Events.MaxBytes, cfg.Pprof, adminSecrets, cfg.WriteTimeout, log),
			ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
			ReadTimeout:       cfg.ReadTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		srv.adminAddr = adminLn.Addr().String()
		adminAddr = srv.adminAddr
		go func() {
			if err := srv.admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				srv.serveErrs <- fmt.Errorf("admin listener stopped serving: %w", err)
			}
		}()
	}
	log.Info("northd started", "listen", strings.Join(srv.listenAddrs(), ","), "admin", adminAddr, "pid", syscall.Getpid())
	srv.closers = undo
	return srv, nil
}

// reloadOnHangup reloads the users file and the TLS certificate on each
// SIGHUP until the instance stops.
func (srv *instance) reloadOnHangup(hup <-chan os.Signal) {
	for {
		select {
		case <-srv.ctx.Done():
			return
		case <-hup:
			srv.reload()
		}
	}
}

// reload reads the users file and the TLS certificate anew. Whatever does
// not load is logged and counted, and the one in force stays. The users a
// new file removes, or gives another password, lose their live tokens;
// those whose ips it narrows lose those at other ips.
func (srv *instance) reload() {
	ok := true
	if srv.auth != nil {
		if changed, narrowed, reloaded := srv.auth.Reload(); reloaded {
			srv.endTokensOfUsers(changed)
			srv.endTokensOutsideIPs(narrowed)
		} else {
			ok = false
		}
	}
	if srv.cert != nil {
		if err := srv.cert.load(); err != nil {
			srv.log.Error("TLS certificate not reloaded; the previous one stays in force", "err", err)
			ok = false
		} else {
			srv.log.Info("TLS certificate reloaded", "cert", srv.cert.certFile)
		}
	}
	if ok {
		srv.reloadsOK.Inc()
	} else {
		srv.reloadsFailed.Inc()
	}
}

// listenAddrs are the subsystems' listen addresses, with real ports.
func (srv *instance) listenAddrs() []string {
	addrs := make([]string, len(srv.subsystems))
	for i, s := range srv.subsystems {
		addrs[i] = s.listenAddr()
	}
	return addrs
}

// wait serves until the context given to start is cancelled or a listener
// fails, then drains and shuts down. It returns nil after a clean shutdown.
func (srv *instance) wait() error {
	cfg, log := srv.cfg, srv.log
	var serveErr error
	select {
	case <-srv.ctx.Done():
	case serveErr = <-srv.serveErrs:
		log.Error("shutting down after a listener failed", "err", serveErr)
	}

	// Leave the balancer's rotation first: /readyz answers 503 from now on,
	// while requests are still served as usual for the drain delay.
	srv.draining.Store(true)
	if serveErr == nil && cfg.DrainDelay > 0 {
		log.Info("draining: /readyz answers 503; serving on until the drain delay ends", "drain_delay", cfg.DrainDelay)
		time.Sleep(cfg.DrainDelay)
	}
	log.Info("shutting down: no new connections; finishing in-flight requests; event streams told to reconnect elsewhere", "shutdown_timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var timedOut atomic.Bool
	for _, s := range srv.subsystems {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := s.server.ShutdownWithContext(shutdownCtx); err != nil {
				timedOut.Store(true)
			}
		}()
		go func() {
			defer wg.Done()
			// Streams are the server's no more (hijacked): each
			// gets a last retry: and is closed.
			s.events.Shutdown(shutdownCtx)
		}()
	}
	wg.Wait()
	if srv.admin != nil {
		srv.admin.Shutdown(shutdownCtx)
		srv.admin.Close()
	}
	// The password checker stops after the servers, so that no handler
	// still waits for it.
	srv.closers.close()
	srv.cancel()
	// Webhook deliveries stop with the instance's context; a delivery
	// cut short is made again by the next start (at least once).
	for _, s := range srv.subsystems {
		if s.push != nil {
			s.push.Wait(shutdownCtx)
		}
	}
	switch {
	case timedOut.Load():
		open := int64(0)
		for _, s := range srv.subsystems {
			open += s.conns.OpenConns()
		}
		log.Error("stopped: the shutdown timeout ended with requests still in flight; their connections were cut", "open_connections", open)
		return fmt.Errorf("shutdown timed out after %v", cfg.ShutdownTimeout)
	case serveErr != nil:
		return serveErr
	}
	log.Info("stopped cleanly: every in-flight request was answered")
	return nil
}

// subsystemNames names each subsystem: NAME= from -listen, or else its real
// port. Two subsystems of one name would share tokens, so that is refused.
func subsystemNames(cfg config.Config, listeners []net.Listener) ([]string, error) {
	names := make([]string, len(listeners))
	seen := make(map[string]string)
	for i, ln := range listeners {
		names[i] = cfg.ListenNames[i]
		if names[i] == "" {
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			names[i] = port
		}
		if other, dup := seen[names[i]]; dup {
			return nil, config.Usagef("subsystems %s and %s are both named %q; name them apart with -listen NAME=ADDR", other, cfg.Listen[i], names[i])
		}
		seen[names[i]] = cfg.Listen[i]
	}
	return names, nil
}

// newAuthenticator checks logins against cfg.Users: the authenticator's
// options from the flags, and a users file it refuses a usage error.
func newAuthenticator(cfg config.Config, set *metrics.Set, log *slog.Logger) (*auth.Authenticator, error) {
	a, err := auth.New(auth.Options{
		UsersFile:       cfg.Users,
		CacheTTL:        cfg.AuthCacheTTL,
		MaxAddrFailures: cfg.MaxLoginFailures,
		MaxUserFailures: cfg.MaxUserLoginFailures,
		FailureWindow:   cfg.LoginFailureWindow,
		IPv6Prefix:      cfg.IPv6Prefix,
	}, set, log)
	return a, authUsage(err)
}

// authUsage makes internal/auth's usage errors northd's, so that main
// exits 2 on them, with the same message.
func authUsage(err error) error {
	if _, usage := errors.AsType[*auth.UsageError](err); usage {
		return config.Usagef("%v", err)
	}
	return err
}

// A reload that removes a user or changes its password ends that user's
// live tokens, in every subsystem and with either store: whoever the
// operator locked out must not stay logged in until the tokens expire.
// One that narrows the ips a user may claim ends its tokens at the others.
// Streams on an ended token close at the next heartbeat, and webhooks
// pause while their north server holds no live token.

// endTokensOfUsers ends the live tokens of users, the ones the reload
// removed or gave another hash (auth.Authenticator.Reload).
func (srv *instance) endTokensOfUsers(users []string) {
	for _, name := range users {
		for _, s := range srv.subsystems {
			n, err := s.store.EndUserTokens(srv.ctx, name)
			if err != nil {
				srv.log.Error("the reload removed a user or changed its password, but its live tokens could not be ended in the store; they verify until they expire or a later reload ends them", "subsystem", s.name, "user", name, "err", err)
				continue
			}
			if n > 0 {
				srv.log.Info("ended the live tokens of a user the reload removed or gave a new password", "subsystem", s.name, "user", name, "tokens", n)
			}
		}
	}
}

// endTokensOutsideIPs ends the live tokens the users narrowed hold at ips
// the users file no longer lets them claim (auth.Authenticator.Reload).
func (srv *instance) endTokensOutsideIPs(narrowed []auth.Narrowed) {
	for _, u := range narrowed {
		for _, s := range srv.subsystems {
			n, err := s.store.EndUserTokensOutside(srv.ctx, u.Username, u.IPs)
			if err != nil {
				srv.log.Error("the reload narrowed the ips of a user, but its live tokens at other ips could not be ended in the store; they verify until they expire or a later reload ends them", "subsystem", s.name, "user", u.Username, "err", err)
				continue
			}
			if n > 0 {
				srv.log.Info("ended the live tokens of a user at ips the reload took from it", "subsystem", s.name, "user", u.Username, "tokens", n)
			}
		}
	}
}
