package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"northd/bench/internal/benchutil"
)

// command is a process to start: its argv, taskset first, and what it adds
// to the environment.
type command struct {
	argv []string
	env  []string
}

// String is the command as a shell would run it.
func (c command) String() string {
	parts := make([]string, 0, len(c.env)+len(c.argv))
	for _, e := range c.env {
		parts = append(parts, benchutil.ShellQuote(e))
	}
	for _, a := range c.argv {
		parts = append(parts, benchutil.ShellQuote(a))
	}
	return strings.Join(parts, " ")
}

// pinning is where the processes run: the servers on one CPU, the load
// generator and redis-server on another, so that a server's CPU is its own.
type pinning struct {
	ServerCPU string `json:"server_cpu"` // taskset -c, GOMAXPROCS=1
	LoadCPU   string `json:"load_cpu"`   // loadtest's (GOMAXPROCS=1) and redis-server's
}

// defaultPinning is this 2-CPU machine's: servers on CPU 0, the rest on 1.
var defaultPinning = pinning{ServerCPU: "0", LoadCPU: "1"}

// pinned is argv run by taskset on cpu, with GOMAXPROCS=1 for a Go program.
func pinned(cpu string, goProgram bool, argv ...string) command {
	c := command{argv: append([]string{"taskset", "-c", cpu}, argv...)}
	if goProgram {
		c.env = []string{"GOMAXPROCS=1"}
	}
	return c
}

// northdCommand is northd on listen with its admin listener (where
// loadtest publishes) on admin, its events in the redis-server at
// redisAddr (Redis Streams) or, when that is "", in its own memory.
func northdCommand(binDir string, pin pinning, listen, admin, redisAddr string) command {
	c := pinned(pin.ServerCPU, true, filepath.Join(binDir, "northd"),
		"-listen", listen, "-admin", admin,
		// Room for the 1,000-stream load and its north servers, as
		// loadtest.mk's event targets give it.
		"-event-max-streams", "20000", "-max-conns", "30000", "-registry-max", "20000")
	if redisAddr != "" {
		c.argv = append(c.argv, "-store", "redis://"+redisAddr+"/0")
	}
	return c
}

// centrifugoCommand is Centrifugo with bench/peers/centrifugo/config.json,
// its listener and engine set from the environment (Centrifugo v6 reads
// every option as CENTRIFUGO_<SECTION>_<KEY>), so that one file serves both
// engines and every port.
func centrifugoCommand(binDir, config string, pin pinning, port int, redisAddr string) command {
	c := pinned(pin.ServerCPU, true, filepath.Join(binDir, "centrifugo"), "--config", config)
	c.env = append(c.env,
		"CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1",
		"CENTRIFUGO_HTTP_SERVER_PORT="+strconv.Itoa(port))
	if redisAddr != "" {
		c.env = append(c.env, "CENTRIFUGO_ENGINE_TYPE=redis", "CENTRIFUGO_ENGINE_REDIS_ADDRESS=redis://"+redisAddr)
	} else {
		c.env = append(c.env, "CENTRIFUGO_ENGINE_TYPE=memory")
	}
	return c
}

// redisCommand is a throwaway redis-server: loopback only, no
// persistence, its files in dir, on the load generator's CPU (beside
// loadtest) so that the servers' CPU stays theirs, as with-server.sh pins it.
func redisCommand(pin pinning, port int, dir string) command {
	return pinned(pin.LoadCPU, false, "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "yes")
}

// loadRun is one run of loadtest events against one server.
type loadRun struct {
	peer        string // northd or centrifugo
	target      string // the server's base URL
	admin       string // northd's admin address; "" for Centrifugo
	config      string // Centrifugo's config file; "" for northd
	idle        bool   // -mode idle: RSS per idle stream
	l           load   // the load (idle: only its streams)
	duration    time.Duration
	publishers  int
	pid         int // the server's
	storePID    int // redis-server's, or 0
	out         string
	loadtestBin string
}

// loadtestCommand is loadtest events for r, on the load generator's CPU.
func loadtestCommand(pin pinning, r loadRun) command {
	argv := []string{r.loadtestBin, "events", "-peer", r.peer, "-target", r.target}
	switch r.peer {
	case northd:
		argv = append(argv, "-admin", r.admin)
	case centrifugo:
		argv = append(argv, "-centrifugo-config", r.config)
	}
	if r.idle {
		argv = append(argv, "-mode", "idle", "-streams", strconv.Itoa(r.l.streams))
	} else {
		argv = append(argv, "-mode", "latency", "-streams", strconv.Itoa(r.l.streams),
			"-rate", strconv.Itoa(r.l.rate), "-batch", strconv.Itoa(r.l.batch),
			"-duration", r.duration.String(), "-publishers", strconv.Itoa(r.publishers))
	}
	argv = append(argv, "-pid", strconv.Itoa(r.pid))
	if r.storePID > 0 {
		argv = append(argv, "-store-pid", strconv.Itoa(r.storePID))
	}
	argv = append(argv, "-out", r.out)
	return pinned(pin.LoadCPU, true, argv...)
}
