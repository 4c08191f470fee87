package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"northd/bench/internal/benchutil"
	"northd/contract"
)

// The -store redis pairs (login-redis, verify-redis) run northd against a
// throwaway redis-server that compare starts: no persistence, loopback
// only, its own temporary directory, pinned to the load generator's CPU
// (wrk's), so that northd keeps its CPU to itself as in the other pairs.
// Before every measured run of such a side compare resets Redis's command
// statistics (CONFIG RESETSTAT) and reads them after it (INFO
// commandstats), so that the report can say how many Redis commands, and
// how many round trips, one request cost.

// redisStartTimeout is generous: a start that takes this long on a shared
// machine is broken, not slow.
const redisStartTimeout = 30 * time.Second

// redisMissing says why the redis pairs cannot run here ("" when they can).
func redisMissing() string {
	for _, p := range []struct{ bin, pkg string }{{"redis-server", "redis-server"}, {"redis-cli", "redis-tools"}} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return p.bin + " is not installed (apt-get install " + p.pkg + ", or make bench-tools as root)"
		}
	}
	return ""
}

// needsRedis says whether a pair runs a server with -store redis.
func (p pair) needsRedis() bool {
	return specNamed(p.a.server).redis || specNamed(p.b.server).redis
}

func specNamed(name string) serverSpec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
	}
	return serverSpec{}
}

// redisServer is the throwaway redis-server.
type redisServer struct {
	port    int
	dir     string
	argv    []string // as run, taskset included
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *bytes.Buffer
	version string
}

func (s *redisServer) addr() string { return addr(s.port) }

// startRedis starts redis-server with pin (a taskset prefix, or none) on a
// free loopback port and waits for its "Ready to accept connections" line.
// A port taken between FreePort and the bind makes it exit; it is tried
// again on another.
func startRedis(pin []string) (*redisServer, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startRedisOnce(pin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("redis-server did not start: %v", lastErr)
}

func startRedisOnce(pin []string) (*redisServer, error) {
	port, err := benchutil.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "northd-bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{port: port, dir: dir, exited: make(chan struct{}), log: new(bytes.Buffer)}
	// No logfile: redis-server logs to its stdout, which is read here.
	s.argv = append(slices.Clone(pin), "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "yes")
	s.cmd = exec.Command(s.argv[0], s.argv[1:]...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		lw := &limitedWriter{w: s.log, left: 64 << 10}
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			lw.Write(append(sc.Bytes(), '\n'))
			if !seen && strings.Contains(sc.Text(), "Ready to accept connections") {
				seen = true
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
		s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-ready:
	case <-s.exited:
		s.stop()
		return nil, fmt.Errorf("exited before it was ready: %s", strings.TrimSpace(s.log.String()))
	case <-time.After(redisStartTimeout):
		s.stop()
		return nil, fmt.Errorf("not ready after %v: %s", redisStartTimeout, strings.TrimSpace(s.log.String()))
	}
	if v, err := s.cli("INFO", "server"); err == nil {
		for line := range strings.SplitSeq(v, "\n") {
			if val, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				s.version = val
			}
		}
	} else {
		s.stop()
		return nil, fmt.Errorf("redis-cli cannot reach it: %v", err)
	}
	return s, nil
}

// stop ends redis-server (SIGTERM, SIGKILL after 10 s) and removes its
// directory. It may be called more than once.
func (s *redisServer) stop() {
	stopGroup(s.cmd, s.exited, 10*time.Second)
	os.RemoveAll(s.dir)
}

func (s *redisServer) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// cpuTicks is redis-server's CPU time (all its threads), in clock ticks.
// taskset execs redis-server, so the pid is redis-server's.
func (s *redisServer) cpuTicks() int64 { return procTicks(s.cmd.Process.Pid) }

// cli runs one command with redis-cli and returns its output.
func (s *redisServer) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s: %v %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	// redis-cli reports some errors on stdout with exit status 0.
	if t := strings.TrimSpace(string(out)); strings.HasPrefix(t, "ERR") || strings.HasPrefix(t, "(error)") {
		return "", fmt.Errorf("redis-cli %s: %s", strings.Join(args, " "), t)
	}
	return string(out), nil
}

// resetStats zeroes Redis's command statistics (CONFIG RESETSTAT).
func (s *redisServer) resetStats() error {
	out, err := s.cli("CONFIG", "RESETSTAT")
	if err == nil && strings.TrimSpace(out) != "OK" {
		err = fmt.Errorf("CONFIG RESETSTAT: %q", strings.TrimSpace(out))
	}
	return err
}

// commandStats reads INFO commandstats: the calls of each command since
// the last reset, compare's own CONFIG RESETSTAT and INFO left out.
func (s *redisServer) commandStats() (map[string]int64, error) {
	out, err := s.cli("INFO", "commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandStats(out)
}

// ownCommands are what compare itself sends between the reset and the
// read: they are not northd's.
var ownCommands = []string{"config|resetstat", "config", "info"}

// parseCommandStats parses the text of INFO commandstats: lines
// "cmdstat_NAME:calls=N,usec=…", NAME lowercase, a subcommand as
// "container|sub" (Redis 7). It returns the calls of each command but
// compare's own.
func parseCommandStats(text string) (map[string]int64, error) {
	calls := map[string]int64{}
	header := false
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "# Commandstats" {
			header = true
			continue
		}
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("INFO commandstats: bad line %q", line)
		}
		n := int64(-1)
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				var err error
				if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
					return nil, fmt.Errorf("INFO commandstats: bad calls in %q", line)
				}
			}
		}
		if n < 0 {
			return nil, fmt.Errorf("INFO commandstats: no calls in %q", line)
		}
		if !slices.Contains(ownCommands, name) {
			calls[strings.ToLower(name)] += n
		}
	}
	if !header {
		return nil, fmt.Errorf("not the text of INFO commandstats: %.200q", text)
	}
	return calls, nil
}

// Where a command seen by MONITOR came from.
const (
	fromClient = "northd" // sent over a connection: one round trip
	fromScript = "script" // run by a Lua script (redis.call), inside the round trip of its EVALSHA
)

// parseMonitorLine reads one line of MONITOR's output,
//
//	1795644451.377174 [0 127.0.0.1:33486] "evalsha" "…" "1" …
//	1795644451.377223 [0 lua] "HGET" "…" "token"
//
// and returns the command (lowercase) and where it came from.
func parseMonitorLine(line string) (command, origin string, ok bool) {
	// The client's address may hold brackets itself (IPv6): the
	// bracket that ends it is the one before the first quote.
	open := strings.IndexByte(line, '[')
	end := strings.Index(line, `] "`)
	if open < 0 || end < open {
		return "", "", false
	}
	_, who, ok := strings.Cut(strings.TrimSpace(line[open+1:end]), " ")
	if !ok {
		return "", "", false
	}
	rest := strings.TrimSpace(line[end+1:])
	if !strings.HasPrefix(rest, `"`) {
		return "", "", false
	}
	q := strings.IndexByte(rest[1:], '"')
	if q <= 0 {
		return "", "", false
	}
	command = strings.ToLower(rest[1 : 1+q])
	origin = fromClient
	if who == "lua" {
		origin = fromScript
	}
	return command, origin, true
}

// monitorOrigins runs do (one request to northd) with a MONITOR attached
// to Redis and says, for each command Redis ran meanwhile, where it came
// from: northd (a round trip) or a script. MONITOR slows Redis down, so it
// runs only here, once per side, after the measured rounds.
func (s *redisServer) monitorOrigins(do func() error) (map[string][]string, error) {
	marker := make([]byte, 8)
	rand.Read(marker)
	mark := "compare-probe-" + hex.EncodeToString(marker)
	cmd := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "MONITOR")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1024)
	stop := make(chan struct{})
	defer func() {
		close(stop)
		cmd.Process.Kill()
		cmd.Wait()
	}()
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
	}()
	timeout := time.After(30 * time.Second)
	next := func() (string, error) {
		select {
		case l, ok := <-lines:
			if !ok {
				return "", errors.New("redis-cli MONITOR ended early")
			}
			return l, nil
		case <-timeout:
			return "", errors.New("redis-cli MONITOR: no answer within 30s")
		}
	}
	// MONITOR answers OK once it is attached.
	if l, err := next(); err != nil {
		return nil, err
	} else if strings.TrimSpace(l) != "OK" {
		return nil, fmt.Errorf("redis-cli MONITOR: %q", l)
	}
	if err := do(); err != nil {
		return nil, err
	}
	// Everything northd's request made Redis run was fed to MONITOR
	// before the response; the marker, sent after it, closes the list.
	if _, err := s.cli("ECHO", mark); err != nil {
		return nil, err
	}
	origins := map[string][]string{}
	for {
		l, err := next()
		if err != nil {
			return nil, err
		}
		if strings.Contains(l, `"`+mark+`"`) {
			break
		}
		if c, o, ok := parseMonitorLine(l); ok && !slices.Contains(origins[c], o) {
			origins[c] = append(origins[c], o)
		}
	}
	return origins, nil
}

// probeRequest is one request of a route, as the route's wrk script sends
// it, for monitorOrigins. The verify route logs in first (before MONITOR
// is attached): the probe is of the verification only.
func probeRequest(r *running, route string) (func() error, error) {
	client := r.client
	check := func(req *http.Request, status int) error {
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("%s %s: status %d: %.200q", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		return nil
	}
	switch route {
	case "login":
		return func() error {
			req, _ := http.NewRequest("POST", r.baseURL()+"/north/login", strings.NewReader(loginLuaBody))
			req.Header.Set("Content-Type", "application/json")
			return check(req, 200)
		}, nil
	case "verify":
		args, err := loginForVerify(r)
		if err != nil {
			return nil, err
		}
		return func() error {
			req, _ := http.NewRequest("GET", r.baseURL()+contract.VerifyPath, nil)
			req.Header.Set("Authorization", "Bearer "+args[0])
			return check(req, 200)
		}, nil
	}
	return nil, fmt.Errorf("no probe for route %s", route)
}

// loginLuaBody is the body bench/wrk/login.lua sends.
const loginLuaBody = `{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}`

// storeUse is what one side with -store redis cost Redis over its
// measured runs.
type storeUse struct {
	requests int64            // responses wrk counted
	calls    map[string]int64 // commands Redis ran, by name
	runs     int
	origins  map[string][]string // from the MONITOR probe; nil: none
	probeErr string
}

// sumStore adds up the Redis commands of a side's runs.
func sumStore(ws []wrkResult) storeUse {
	u := storeUse{calls: map[string]int64{}}
	for _, w := range ws {
		if w.StoreCalls == nil {
			continue
		}
		u.runs++
		u.requests += w.Requests
		for c, n := range w.StoreCalls {
			u.calls[c] += n
		}
	}
	return u
}

// storeCommand is one command's line of the report.
type storeCommand struct {
	name       string
	calls      int64
	perRequest float64
	origin     string // fromClient, fromScript, both, or "" when the probe did not see it
}

// perRequest is calls ÷ requests for every command, most frequent first,
// and the totals: every command Redis ran, the round trips (commands
// northd sent, as the probe saw them), and what the probe did not see.
func (u storeUse) perRequest() (cmds []storeCommand, all, roundTrips, unseen float64) {
	if u.requests <= 0 {
		return nil, 0, 0, 0
	}
	for name, n := range u.calls {
		if n == 0 {
			continue
		}
		c := storeCommand{name: name, calls: n, perRequest: float64(n) / float64(u.requests)}
		base, _, _ := strings.Cut(name, "|") // MONITOR shows "client", commandstats "client|setinfo"
		switch o := u.origins[base]; len(o) {
		case 0:
		case 1:
			c.origin = o[0]
		default:
			c.origin = "both"
		}
		all += c.perRequest
		switch c.origin {
		case fromClient:
			roundTrips += c.perRequest
		case "", "both":
			unseen += c.perRequest
		}
		cmds = append(cmds, c)
	}
	// northd's round trips first, then what scripts ran, then the rest.
	rank := map[string]int{fromClient: 0, fromScript: 1, "both": 2, "": 3}
	sort.Slice(cmds, func(i, j int) bool {
		if ri, rj := rank[cmds[i].origin], rank[cmds[j].origin]; ri != rj {
			return ri < rj
		}
		if cmds[i].calls != cmds[j].calls {
			return cmds[i].calls > cmds[j].calls
		}
		return cmds[i].name < cmds[j].name
	})
	return cmds, all, roundTrips, unseen
}

// storeSide is one side of a pair with -store redis, and its use of Redis.
type storeSide struct {
	pair, side string // the pair's name, A or B
	s          side
	ws         []wrkResult
	use        storeUse
}

func (r *results) storeSides() []storeSide {
	var out []storeSide
	for _, pr := range r.pairs {
		for _, x := range pr.sides() {
			if !specNamed(x.s.server).redis {
				continue
			}
			u := sumStore(x.ws)
			u.origins, u.probeErr = pr.origins[x.name], pr.probeErr[x.name]
			out = append(out, storeSide{pr.p.name, x.name, x.s, x.ws, u})
		}
	}
	return out
}

var originText = map[string]string{fromClient: "northd (a round trip)", fromScript: "a Lua script, within its EVALSHA",
	"both": "northd and scripts", "": "not seen in the probe"}

// writeStore writes the report's section on the store's round trips.
func (r *results) writeStore(p func(format string, a ...any)) {
	sides := r.storeSides()
	if len(sides) == 0 {
		return
	}
	p("## Store round trips\n\n")
	if r.o.redis == nil {
		p("Not measured: %s.\n\n", r.o.redisSkip)
		return
	}
	p("Redis's own count of the commands it ran (`INFO commandstats`), zeroed with `CONFIG RESETSTAT` just before every measured run ")
	p("of a side with `-store redis` and read just after it, divided by the responses wrk counted in that run; summed over the side's rounds ")
	p("(warm-up left out; compare's own CONFIG and INFO left out). Requests still in flight when wrk stopped (at most %d, its connections) ", r.o.conns)
	p("may have reached Redis without being counted. Redis counts the commands a Lua script runs (`redis.call`) as well as the EVALSHA that ran it: ")
	p("which commands northd sent, one round trip each, and which its scripts ran was seen once per side, after the rounds, ")
	p("by `MONITOR` during one request of the route. redis-server %s ran on CPU %s, the load generator's (with wrk), not on northd's.\n\n",
		r.o.redis.version, orAll(r.o.clientCPUs))
	p("| side | request | responses (wrk) | Redis commands per request | round trips per request (sent by northd) | Redis CPU (median of runs) |\n")
	p("|---|---|--:|--:|--:|--:|\n")
	for _, x := range sides {
		label := fmt.Sprintf("%s %s (%s)", x.pair, x.side, x.s.label())
		if x.use.runs == 0 || x.use.requests == 0 {
			p("| %s | %s | | not measured | | |\n", label, x.s.route)
			continue
		}
		cmds, all, trips, unseen := x.use.perRequest()
		tripText := fmt.Sprintf("**%.3f**", trips)
		if x.use.origins == nil {
			tripText = "not probed: " + x.use.probeErr
		} else if unseen > 0 {
			var names []string
			for _, c := range cmds {
				if c.origin == "" || c.origin == "both" {
					names = append(names, c.name)
				}
			}
			tripText += fmt.Sprintf(" (+ %.4f of %s, not seen in the probe)", unseen, strings.Join(names, ", "))
		}
		p("| %s | %s | %s | %.3f | %s | %.0f%% |\n", label, x.s.route, benchutil.Commas(float64(x.use.requests)), all, tripText,
			100*benchutil.Median(field(x.ws, func(w wrkResult) float64 { return w.StoreCPU })))
	}
	p("\n| side | command | calls | per request | run by |\n|---|---|--:|--:|---|\n")
	for _, x := range sides {
		cmds, _, _, _ := x.use.perRequest()
		for _, c := range cmds {
			p("| %s %s | %s | %s | %.4f | %s |\n", x.pair, x.side, c.name, benchutil.Commas(float64(c.calls)), c.perRequest, originText[c.origin])
		}
	}
	p("\n")
}

// storeSummaryJSON is one side's Redis use in the JSON file.
type storeSummaryJSON struct {
	Pair                 string                      `json:"pair"`
	Side                 string                      `json:"side"`
	Server               string                      `json:"server"`
	Route                string                      `json:"route"`
	Runs                 int                         `json:"runs"`
	Responses            int64                       `json:"responses"`
	CommandsPerRequest   float64                     `json:"commands_per_request"`
	RoundTripsPerRequest *float64                    `json:"round_trips_per_request"` // null: not probed
	NotSeenPerRequest    float64                     `json:"not_seen_in_probe_per_request"`
	Commands             map[string]storeCommandJSON `json:"commands"`
	ProbeError           string                      `json:"probe_error,omitempty"`
}

type storeCommandJSON struct {
	Calls      int64   `json:"calls"`
	PerRequest float64 `json:"per_request"`
	From       string  `json:"from"` // northd, script, both, or "" (not seen in the probe)
}

func (r *results) storeSummary() []storeSummaryJSON {
	if r.o.redis == nil {
		return nil
	}
	var out []storeSummaryJSON
	for _, x := range r.storeSides() {
		cmds, all, trips, unseen := x.use.perRequest()
		j := storeSummaryJSON{Pair: x.pair, Side: strings.ToLower(x.side), Server: x.s.server, Route: x.s.route,
			Runs: x.use.runs, Responses: x.use.requests, CommandsPerRequest: all, NotSeenPerRequest: unseen,
			Commands: map[string]storeCommandJSON{}, ProbeError: x.use.probeErr}
		if x.use.origins != nil {
			j.RoundTripsPerRequest = &trips
		}
		for _, c := range cmds {
			j.Commands[c.name] = storeCommandJSON{c.calls, c.perRequest, c.origin}
		}
		out = append(out, j)
	}
	return out
}

func orAll(cpus string) string {
	if cpus == "" {
		return "any (not pinned)"
	}
	return cpus
}

// redisCommand is redis-server's command line for the report, its
// directory named by a variable.
func (s *redisServer) command() string {
	parts := make([]string, len(s.argv))
	for i, a := range s.argv {
		if a == s.dir {
			a = "$REDISDIR"
		} else {
			a = benchutil.ShellQuote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ") + "   # $REDISDIR: a temporary directory compare makes and removes"
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = benchutil.ShellQuote(a)
	}
	return out
}
