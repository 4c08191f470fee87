// Command loadtest sends constant-rate (open-loop) load to northd, verifies
// every response against the wire contract, and reports latency corrected
// for coordinated omission. See loadtest/README.md.
//
//	go -C loadtest run . -target http://127.0.0.1:8000 -scenario mixed -rate 2000 -duration 30s -out report.json
//
// loadtest is a module of its own (loadtest/go.mod), apart from the
// server's, so that the server does not require vegeta and HdrHistogram.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	targets     []string
	scenario    string
	load        string
	rate        int
	duration    time.Duration
	connections int
	timeout     time.Duration
	out         string
	slo         time.Duration
	mix         string
	maxBodySize int
	workers     int
	maxWorkers  int
	progress    bool
	client      string
	cpuProfile  string
	gcLimit     int64

	step    int
	maxRate int
	refine  int
	retries int
	cool    time.Duration

	pid          int
	storePID     int
	warmup       time.Duration
	rssTolerance float64
	sample       time.Duration

	northServers int
	stormAddrs   int
}

// allScenarios are the -scenario values.
var allScenarios = append(append([]string{}, scenarioNames...), "ramp", "soak", "conns")

// defaultLoad is the request scenario ramp, soak and conns send unless
// -load says otherwise.
var defaultLoad = map[string]string{"ramp": "login", "soak": "login-varied", "conns": "mixed"}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `loadtest sends constant-rate (open-loop) HTTP load to northd, verifies every
response against the wire contract, and reports latency corrected for
coordinated omission. It exits 1 when any response was wrong or missing (or
a scenario's own check failed), 2 on a bad command line.

Usage: loadtest [flags]   (make loadtest-build makes bin/loadtest)

Scenarios (-scenario):
  home          GET / only
  login         POST /north/login with one fixed valid body
  login-varied  POST /north/login, username and ip different on every request
  mixed         home, login, 404 and bad JSON in the shares of -mix
  bad-input     every refusal of the contract in turn: malformed JSON, wrong
                types, bad ip, wrong method, oversize body (413), missing
                Content-Length, garbage request lines (the last three over raw
                TCP)
  ramp          runs -load at -rate, then -rate+-step, ... for -duration each,
                until p99 exceeds -slo, errors appear or the sender falls
                behind; then narrows the gap -refine times and prints the
                highest rate that held
  soak          runs -load at -rate for -duration, sampling the target's RSS
                (local targets, or -pid) and reporting whether it stayed flat
  conns         holds -connections idle keep-alive connections open while -load
                runs at -rate, checking p99 still meets -slo
  auth-storm    known north servers (-north-servers) log in with the right
                password, cached after a first login made before the load,
                while a storm of wrong passwords comes from -storm-addresses
                client addresses (X-Forwarded-For), in the shares of -mix
                (default known=1,storm=4). Passes when the known servers'
                p99 is within -slo (default 2ms here) with every login
                right, and the storm got only 401, 429 or 503, each as the
                contract writes it, and every request an answer. northd
                must run with -users FILE (loadtest write-users -n N FILE)
                and -trusted-proxies 127.0.0.1
  verify        each known north server logs in once, then GET /north/verify
                with its token at -rate; every answer must be that server's
                verification

  loadtest write-users [-n N] [-hash argon2id|bcrypt:COST] FILE writes the
  users file of the known north servers (north-K, password loadtest-secret-K).

  loadtest events [-peer northd|centrifugo] [-mode latency|fanout|idle]
  [-streams N] ... streams events to N north servers (or Centrifugo
  uni_sse connections) while publishing, and checks every event on every
  stream (loadtest events -h).

  loadtest webhooks [-receivers N] [-hanging M] ... subscribes receivers
  that check every delivery's signature and order while publishing
  (loadtest webhooks -h).

Flags:
`)
		fs.PrintDefaults()
	}
	var targets string
	fs.StringVar(&targets, "target", "http://127.0.0.1:8000", "base `URL`s of the server, comma-separated; requests go round-robin")
	fs.StringVar(&cfg.scenario, "scenario", "mixed", "scenario: "+strings.Join(allScenarios, ", "))
	fs.StringVar(&cfg.load, "load", "", "request scenario that ramp, soak and conns send (default login for ramp, login-varied for soak, mixed for conns)")
	fs.IntVar(&cfg.rate, "rate", 1000, "requests per second, constant and open-loop (ramp: the first step's rate)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to send (ramp: each step)")
	fs.IntVar(&cfg.connections, "connections", 0, "most connections per target host the client opens (default 256); conns: the idle connections to hold (default 10000)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "time for one request's response; later counts as a timeout error")
	fs.StringVar(&cfg.out, "out", "", "write the JSON report to this `file`, and the latency plot beside it (.html)")
	fs.DurationVar(&cfg.slo, "slo", time.Millisecond, "p99 latency objective for ramp and conns")
	fs.StringVar(&cfg.mix, "mix", "", "mixed: case=weight shares (default "+defaultMix+"); auth-storm: of known and storm (default "+defaultAuthStormMix+")")
	fs.IntVar(&cfg.maxBodySize, "max-body-size", 65536, "the server's -max-body-size: bad-input's oversize body is one byte more")
	fs.IntVar(&cfg.workers, "workers", 16, "goroutines sending at the start (more are started when all are busy)")
	fs.IntVar(&cfg.maxWorkers, "max-workers", 10000, "most goroutines sending at once")
	fs.BoolVar(&cfg.progress, "progress", isTerminal(os.Stderr), "draw a progress bar on stderr (default: when stderr is a terminal)")
	fs.StringVar(&cfg.client, "client", "nethttp", "HTTP client under vegeta: nethttp (net/http: the strictest reader of responses) or fasthttp (a fraction of the CPU per request: for rates one core of net/http cannot send)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write this tool's CPU profile to `file` (to see what limits the sender)")
	fs.Int64Var(&cfg.gcLimit, "gc-limit", 2<<30, "collect this tool's garbage only when its heap reaches this many `bytes` (a collection stalls the sender and shows in the tail); 0: Go's default (GOGC)")
	fs.IntVar(&cfg.step, "step", 5000, "ramp: requests per second added at each step")
	fs.IntVar(&cfg.maxRate, "max-rate", 300000, "ramp: the highest rate tried")
	fs.IntVar(&cfg.refine, "refine", 2, "ramp: after the first failing step, how many times to halve the gap to the last rate that held")
	fs.IntVar(&cfg.retries, "retries", 1, "ramp: run a step that missed the SLO (without errors) again up to this many times before it counts as failed: on a shared machine one burst of noise can spoil a step")
	fs.DurationVar(&cfg.cool, "cool", time.Second, "ramp: pause between steps")
	fs.IntVar(&cfg.pid, "pid", 0, "soak, conns: the server's process id for RSS sampling (default: found by the local target's port)")
	fs.IntVar(&cfg.storePID, "store-pid", 0, "the process id of the server's store (the redis-server of northd -store redis): its CPU is reported beside the server's (with-server.sh passes it for {redis})")
	fs.DurationVar(&cfg.warmup, "warmup", 10*time.Second, "soak: RSS samples this early are left out of the flatness check")
	fs.Float64Var(&cfg.rssTolerance, "rss-tolerance", 0.10, "soak: RSS is flat when (max-min)/min after the warmup is at most this")
	fs.DurationVar(&cfg.sample, "sample", time.Second, "soak, conns: RSS sampling period")
	fs.IntVar(&cfg.northServers, "north-servers", 20, "auth-storm, verify: known north servers, north-1 … north-N (their users file: loadtest write-users -n N)")
	fs.IntVar(&cfg.stormAddrs, "storm-addresses", 5000, "auth-storm: distinct client addresses the storm comes from, in turn")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	sloSet := false
	fs.Visit(func(f *flag.Flag) { sloSet = sloSet || f.Name == "slo" })
	if cfg.scenario == "auth-storm" && !sloSet {
		cfg.slo = 2 * time.Millisecond // the objective for the known servers
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for t := range strings.SplitSeq(targets, ",") {
		t = strings.TrimRight(strings.TrimSpace(t), "/")
		u, err := url.Parse(t)
		if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("-target %q: want http://host:port", t)
		}
		cfg.targets = append(cfg.targets, t)
	}
	known := false
	for _, s := range allScenarios {
		known = known || s == cfg.scenario
	}
	if !known {
		return nil, fmt.Errorf("-scenario %q: want one of %s", cfg.scenario, strings.Join(allScenarios, ", "))
	}
	if cfg.load == "" {
		cfg.load = defaultLoad[cfg.scenario]
	}
	switch {
	case cfg.rate <= 0:
		return nil, errors.New("-rate must be positive")
	case cfg.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case cfg.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	case cfg.client != "nethttp" && cfg.client != "fasthttp":
		return nil, fmt.Errorf("-client %q: want nethttp or fasthttp", cfg.client)
	case cfg.connections < 0:
		return nil, errors.New("-connections must not be negative")
	case cfg.workers <= 0 || cfg.maxWorkers < cfg.workers:
		return nil, errors.New("-workers must be positive and at most -max-workers")
	case cfg.scenario == "ramp" && (cfg.step <= 0 || cfg.maxRate < cfg.rate):
		return nil, errors.New("-step must be positive and -max-rate at least -rate")
	case cfg.northServers <= 0 || cfg.northServers > maxNorthServers:
		return nil, fmt.Errorf("-north-servers must be 1 to %d", maxNorthServers)
	case cfg.stormAddrs <= 0 || cfg.stormAddrs > maxStormAddrs:
		return nil, fmt.Errorf("-storm-addresses must be 1 to %d", maxStormAddrs)
	}
	return cfg, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "write-users" {
		return runWriteUsers(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "events" {
		return runEvents(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "webhooks" {
		return runWebhooks(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	load := cfg.scenario
	if defaultLoad[cfg.scenario] != "" {
		load = cfg.load
	}
	sc, err := newScenario(load, scenarioOptions{mix: cfg.mix, maxBody: cfg.maxBodySize,
		northServers: cfg.northServers, stormAddrs: cfg.stormAddrs, targets: len(cfg.targets)})
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	idle := 0
	if cfg.scenario == "conns" {
		idle = cfg.connections
		if idle == 0 {
			idle = 10000
		}
		cfg.connections = 0
	}
	if cfg.connections == 0 {
		cfg.connections = 256
	}
	if cfg.gcLimit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(cfg.gcLimit))
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	e := newEngine(cfg, sc)
	if sc.prime != nil {
		if err := sc.prime(ctx, newPrimer(cfg.targets, e.verifier.tokens, cfg.timeout)); err != nil {
			fmt.Fprintln(stderr, "loadtest: FAIL:", err)
			return 1
		}
	}
	rep := &Report{Version: reportVersion, Scenario: cfg.scenario, Targets: cfg.targets, Started: time.Now().UTC().Truncate(time.Millisecond)}
	if cfg.scenario != load {
		rep.Scenario = cfg.scenario + ":" + load
	}
	switch cfg.scenario {
	case "ramp":
		runRamp(ctx, e, rep, stdout)
	case "soak":
		runSoak(ctx, e, rep, stderr)
	case "conns":
		runConns(ctx, e, rep, idle, stderr)
	case "auth-storm":
		runAuthStorm(ctx, e, rep)
	default:
		st := e.attack(ctx, cfg.scenario, cfg.rate, cfg.duration)
		rep.fillFrom(st, e.verifier.tokens.Len())
		rep.Passed = st.failed == 0 && st.requests > 0
		rep.Verdict = verdict(rep.Passed, st, "")
	}
	if ctx.Err() != nil {
		rep.Passed = false
		rep.Verdict = "FAIL: interrupted"
	}
	if cfg.out != "" {
		if err := rep.save(cfg.out, e); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 1
		}
	}
	rep.writeText(stdout)
	if !rep.Passed {
		return 1
	}
	return 0
}

func verdict(passed bool, st *stepStats, extra string) string {
	if passed {
		return "PASS: every response verified" + extra
	}
	if st.requests == 0 {
		return "FAIL: no request was sent"
	}
	if st.failed > 0 {
		return fmt.Sprintf("FAIL: %d of %d responses wrong or missing%s", st.failed, st.requests, extra)
	}
	return "FAIL" + extra
}
