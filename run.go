package northd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp/prefork"
	"github.com/valyala/fasthttp/reuseport"
)

// Run starts northd as the command line and environment say, serves until
// ctx is cancelled (main cancels it on SIGINT or SIGTERM), then drains and
// shuts down. It returns nil after a clean shutdown, a UsageError for bad
// flags, and another error when northd cannot start or stop cleanly.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if cfg.Prefork && !prefork.IsChild() {
		return runPreforkMaster(ctx, cfg, log)
	}

	listeners, err := listenAll(cfg)
	if err != nil {
		return err
	}
	var adminLn net.Listener
	if cfg.Admin != "" {
		if adminLn, err = listen(cfg.Admin, false); err != nil {
			for _, ln := range listeners {
				ln.Close()
			}
			return err
		}
	}

	set := metrics.NewSet()
	draining := new(atomic.Bool)
	subsystems := make([]*Subsystem, len(listeners))
	addrs := make([]string, len(listeners))
	for i, ln := range listeners {
		subsystems[i] = newSubsystem(cfg, ln.Addr().String(), ln, draining, set, log)
		addrs[i] = subsystems[i].Addr()
	}

	serveErrs := make(chan error, len(subsystems)+1)
	for _, s := range subsystems {
		go s.runPushHook()
		go func() {
			if err := s.server.Serve(s.listener); err != nil {
				serveErrs <- fmt.Errorf("subsystem %s stopped serving: %w", s.addr, err)
			}
		}()
	}
	var admin *http.Server
	adminAddr := "disabled"
	if adminLn != nil {
		admin = &http.Server{
			Handler:           adminHandler(set, subsystems, cfg.Pprof),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		adminAddr = adminLn.Addr().String()
		go func() {
			if err := admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErrs <- fmt.Errorf("admin listener stopped serving: %w", err)
			}
		}()
	}
	log.Info("northd started", "listen", strings.Join(addrs, ","), "admin", adminAddr, "pid", syscall.Getpid())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveErrs:
		log.Error("shutting down after a listener failed", "err", serveErr)
	}

	// Leave the balancer's rotation first: /readyz answers 503 from now on,
	// while requests are still served as usual for the drain delay.
	draining.Store(true)
	if serveErr == nil && cfg.DrainDelay > 0 {
		log.Info("draining: /readyz answers 503; serving on until the drain delay ends", "drain_delay", cfg.DrainDelay)
		time.Sleep(cfg.DrainDelay)
	}
	log.Info("shutting down: no new connections; finishing in-flight requests", "shutdown_timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var timedOut atomic.Bool
	for _, s := range subsystems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.server.ShutdownWithContext(shutdownCtx); err != nil {
				timedOut.Store(true)
			}
			s.stopPushHook()
		}()
	}
	wg.Wait()
	if admin != nil {
		admin.Shutdown(shutdownCtx)
		admin.Close()
	}
	switch {
	case timedOut.Load():
		open := int64(0)
		for _, s := range subsystems {
			open += s.openConns.Load()
		}
		log.Error("stopped: the shutdown timeout ended with requests still in flight; their connections were cut", "open_connections", open)
		return fmt.Errorf("shutdown timed out after %v", cfg.ShutdownTimeout)
	case serveErr != nil:
		return serveErr
	}
	log.Info("stopped cleanly: every in-flight request was answered")
	return nil
}

func listenAll(cfg Config) ([]net.Listener, error) {
	var lns []net.Listener
	for _, addr := range cfg.Listen {
		ln, err := listen(addr, cfg.ReusePort)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func listen(addr string, reusePort bool) (net.Listener, error) {
	var ln net.Listener
	var err error
	if reusePort {
		network := "tcp4"
		if host, _, _ := net.SplitHostPort(addr); strings.Contains(host, ":") {
			network = "tcp6"
		}
		ln, err = reuseport.Listen(network, addr)
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("cannot listen on %s: the address is already in use (another northd? pick another with -listen)", addr)
	case err != nil:
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}
