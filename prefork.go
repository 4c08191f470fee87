package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp/prefork"

	"northd/internal/config"
)

// errPreforkStopping ends fasthttp/prefork's supervision loop on shutdown.
var errPreforkStopping = errors.New("prefork: shutting down")

// runPreforkMaster starts one child northd per CPU (GOMAXPROCS), each with
// GOMAXPROCS=1, all sharing the listen addresses through SO_REUSEPORT, and
// restarts a child that dies. fasthttp/prefork supervises them; this adds
// what a multi-port server with an admin listener needs: child k serves its
// admin listener on the -admin port plus k, and SIGTERM to the master
// drains every child. Children get the master's args, and write to its
// stdout and stderr.
func runPreforkMaster(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer, log *slog.Logger) error {
	n := runtime.GOMAXPROCS(0)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("prefork: cannot find this program to start children: %w", err)
	}
	var adminHost string
	var adminPort int
	if cfg.Admin != "" {
		host, port, _ := net.SplitHostPort(cfg.Admin)
		adminHost = host
		adminPort, _ = strconv.Atoi(port)
	}

	var mu sync.Mutex
	slots := make([]int, n) // child pid per slot, 0 when free
	p := &prefork.Prefork{
		Reuseport:        true,
		Logger:           fasthttpLogger{log: log, subsystem: "prefork"},
		RecoverThreshold: n * 4,
		// A child that dies is replaced after this long; it is also how
		// long shutdown waits for drained children before prefork sends
		// the stragglers a second SIGTERM, which would cut their requests.
		RecoverInterval:     cfg.DrainDelay + cfg.ShutdownTimeout + time.Second,
		ShutdownGracePeriod: time.Second,
		CommandProducer: func([]*os.File) (*exec.Cmd, error) {
			if ctx.Err() != nil {
				return nil, errPreforkStopping
			}
			mu.Lock()
			defer mu.Unlock()
			slot := -1
			for i, pid := range slots {
				if pid == 0 || syscall.Kill(pid, 0) != nil {
					slot = i
					break
				}
			}
			if slot < 0 {
				return nil, errors.New("prefork: no free child slot")
			}
			childArgs := append([]string{exe}, args...)
			if adminPort > 0 {
				// The last -admin on the command line wins.
				childArgs = append(childArgs, "-admin", net.JoinHostPort(adminHost, strconv.Itoa(adminPort+slot)))
			}
			cmd := &exec.Cmd{
				Path:   exe,
				Args:   childArgs,
				Stdout: stdout,
				Stderr: stderr,
				Env:    append(os.Environ(), "FASTHTTP_PREFORK_CHILD=1", "GOMAXPROCS=1"),
			}
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			slots[slot] = cmd.Process.Pid
			return cmd, nil
		},
		OnMasterReady: func(pids []int) error {
			log.Info("prefork: children started", "children", len(pids), "pids", fmt.Sprint(pids))
			return nil
		},
	}

	// SIGHUP is passed on to every child, each of which reloads its
	// users file and certificate.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- p.ListenAndServe(cfg.Listen[0]) }()
wait:
	for {
		select {
		case err := <-done:
			return fmt.Errorf("prefork: %w", err)
		case <-hup:
			mu.Lock()
			for _, pid := range slots {
				if pid != 0 {
					_ = syscall.Kill(pid, syscall.SIGHUP)
				}
			}
			mu.Unlock()
		case <-ctx.Done():
			break wait
		}
	}
	// Every child drains at once, so /readyz says 503 on every process
	// that shares the port. fasthttp/prefork waits out the recovery
	// interval (as long as a drain) before it would replace one, and
	// CommandProducer now refuses anyway; the master returns once every
	// child has exited.
	log.Info("prefork: draining children")
	mu.Lock()
	pids := append([]int(nil), slots...)
	mu.Unlock()
	for _, pid := range pids {
		if pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(cfg.DrainDelay + cfg.ShutdownTimeout + time.Second)
	for _, pid := range pids {
		for pid != 0 && syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("prefork: child %d still running after the drain delay and shutdown timeout", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	log.Info("prefork: every child stopped")
	return nil
}
