package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// route is one workload: a wrk script and the URL path it is given.
type route struct {
	name   string
	title  string // for tables and the chart
	script string // under bench/wrk
	path   string
	args   []string // after "--"
	// prepare, when set, runs before every measurement of the route and
	// returns more arguments for the script (verify: the token).
	prepare func(r *running) ([]string, error)
	// prepared describes, for the report's commands, what prepare passes.
	prepared string
	// pipeline is the requests per write (pipeline.lua's depth), 0 for
	// one request in flight per connection (keep-alive).
	pipeline int
}

// pipelineDepth is the pipelined routes' requests per write: 16, as in
// TechEmpower's plaintext test.
const pipelineDepth = 16

// skipOn says why the route is not measured on a server ("" when it is):
// a server that closes the connection after every answer cannot be
// pipelined to (wrk would count fifteen of every sixteen requests as
// lost).
func (rt route) skipOn(s serverSpec) string {
	if rt.name == verifyRoute.name && !strings.HasPrefix(s.name, "northd") {
		return "not measured: only northd has /north/verify"
	}
	if rt.pipeline > 0 && s.closes {
		return "not measured pipelined: it closes the connection after every answer"
	}
	return ""
}

var routes = []route{
	{name: "home", title: "GET /", script: "get.lua", path: "/"},
	{name: "login", title: "login", script: "login.lua", path: "/"},
	{name: "login-varied", title: "login-varied", script: "login-varied.lua", path: "/"},
	{name: "notfound", title: "404", script: "get.lua", path: "/favicon.ico", args: []string{"404"}},
	// Pipelined: pipeline.lua writes 16 requests at once on every
	// connection and the next 16 when their 16 answers are in; each
	// answer's status is counted as for the others.
	{name: "home-p16", title: "GET / pipelined-16", script: "pipeline.lua", path: "/",
		args: []string{strconv.Itoa(pipelineDepth), "home"}, pipeline: pipelineDepth},
	{name: "login-p16", title: "login pipelined-16", script: "pipeline.lua", path: "/",
		args: []string{strconv.Itoa(pipelineDepth), "login"}, pipeline: pipelineDepth},
}

// routeNames are the -routes default: every route of routes.
func routeNames() string {
	names := make([]string, len(routes))
	for i, rt := range routes {
		names[i] = rt.name
	}
	return strings.Join(names, ",")
}

// verifyRoute is GET /north/verify with a token from one login before
// each run. It is northd's alone, so it is not among the routes every
// server is measured on: the pairs (pairs.go) use it.
var verifyRoute = route{name: "verify", title: "verify", script: "verify.lua", path: "/",
	prepare:  loginForVerify,
	prepared: "$TOKEN   # from one login just before: curl -d '" + verifyLoginBody + "' <server>/north/login"}

// routeNamed finds a route by name, verify included.
func routeNamed(name string) (route, bool) {
	for _, rt := range append(routes[:len(routes):len(routes)], verifyRoute) {
		if rt.name == name {
			return rt, true
		}
	}
	return route{}, false
}

// wrkResult is the WRKJSON line bench/wrk/common.lua prints in done().
type wrkResult struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	RPS           float64 `json:"rps"`
	P50US         float64 `json:"p50_us"`
	P90US         float64 `json:"p90_us"`
	P99US         float64 `json:"p99_us"`
	MaxUS         float64 `json:"max_us"`
	StatusErrors  int64   `json:"status_errors"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	Timeouts      int64   `json:"timeouts"`
	Expect        int     `json:"expect"`
	Unexpected    int64   `json:"unexpected"`
	Checked       bool    `json:"checked"`

	// filled in by the runner
	ServerCPU float64 `json:"-"` // share of one CPU the server used
	OtherCPU  float64 `json:"-"` // CPUs used by everything but the server, its store and wrk
	// A server with -store redis (store.go): the share of one CPU
	// redis-server used, and the commands it ran during the run.
	StoreCPU   float64          `json:"-"`
	StoreCalls map[string]int64 `json:"-"`
}

// parseWrk finds the WRKJSON line in wrk's output.
func parseWrk(out []byte) (wrkResult, error) {
	var r wrkResult
	for _, line := range bytes.Split(out, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("WRKJSON ")); ok {
			if err := json.Unmarshal(rest, &r); err != nil {
				return r, fmt.Errorf("bad WRKJSON line: %v", err)
			}
			return r, nil
		}
	}
	return r, errors.New("no WRKJSON line in wrk's output (was the script's done() run?)")
}

// wrkArgv is the wrk command line for a route against a server's base
// URL (scheme and address), with the script's arguments and extra ones.
func wrkArgv(o *options, rt route, base string, d time.Duration, extra []string) []string {
	argv := append([]string{}, o.clientPin...)
	argv = append(argv, o.wrk, "-t"+strconv.Itoa(o.threads), "-c"+strconv.Itoa(o.conns),
		"-d"+formatSeconds(d), "-s", "bench/wrk/"+rt.script, base+rt.path)
	if len(rt.args)+len(extra) > 0 {
		argv = append(argv, "--")
		argv = append(argv, rt.args...)
		argv = append(argv, extra...)
	}
	return argv
}

func formatSeconds(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	return s + "s"
}

// runWrk runs one measurement and the server's CPU use during it.
func runWrk(o *options, r *running, rt route, d time.Duration) (wrkResult, error) {
	var extra []string
	if rt.prepare != nil {
		var err error
		if extra, err = rt.prepare(r); err != nil {
			return wrkResult{}, fmt.Errorf("%s, route %s: %v", r.spec.name, rt.name, err)
		}
	}
	argv := wrkArgv(o, rt, r.baseURL(), d, extra)
	cmd := exec.Command(argv[0], argv[1:]...)
	// wrk counts statuses >= 400 itself; the scripts' per-response
	// check in Lua would only slow the client.
	cmd.Env = append(os.Environ(), "WRK_CHECK=0")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// Redis's command counts start from zero with the run, after the
	// route's preparation (the verify route's login).
	store := o.redis
	if !r.spec.redis {
		store = nil
	}
	var store0 int64
	if store != nil {
		if err := store.resetStats(); err != nil {
			return wrkResult{}, err
		}
		store0 = store.cpuTicks()
	}
	before := r.cpuTicks()
	busy0 := machineBusyTicks()
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	after := r.cpuTicks()
	busy1 := machineBusyTicks()
	var storeTicks int64
	var calls map[string]int64
	if store != nil {
		storeTicks = store.cpuTicks() - store0
		if !store.alive() {
			return wrkResult{}, fmt.Errorf("redis-server exited during the run: %s", store.log.String())
		}
		var serr error
		if calls, serr = store.commandStats(); serr != nil && err == nil {
			return wrkResult{}, serr
		}
	}
	if err != nil {
		return wrkResult{}, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
	}
	res, err := parseWrk(out.Bytes())
	if err != nil {
		return res, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
	}
	if !r.alive() {
		return res, fmt.Errorf("%s exited during the run: %s", r.spec.name, r.log.String())
	}
	res.ServerCPU = float64(after-before) / clockTicks / wall.Seconds()
	if store != nil {
		res.StoreCPU = float64(storeTicks) / clockTicks / wall.Seconds()
		res.StoreCalls = calls
	}
	if st := cmd.ProcessState; st != nil && busy0 > 0 {
		wrkCPU := (st.UserTime() + st.SystemTime()).Seconds()
		other := float64(busy1-busy0)/clockTicks - float64(after-before)/clockTicks - wrkCPU - float64(storeTicks)/clockTicks
		res.OtherCPU = max(0, other/wall.Seconds())
	}
	return res, nil
}

// machineBusyTicks is the CPU time every CPU spent not idle, from
// /proc/stat (0 when it cannot be read).
func machineBusyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return busy
}
