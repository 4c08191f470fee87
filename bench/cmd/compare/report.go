package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type results struct {
	o        *options
	routes   []route
	servers  []*running
	skipped  []string
	runs     map[string]map[string][]wrkResult // route → server → rounds
	pairs    []*pairResult
	all      []*running // every server started, the routes' first
	commands []string
	started  time.Time
	reruns   int
}

func newResults(o *options, rs []route, live []*running, skipped []string) *results {
	return &results{o: o, routes: rs, servers: live, skipped: skipped,
		runs: map[string]map[string][]wrkResult{}, started: time.Now()}
}

func (r *results) add(rt, server string, w wrkResult) {
	if r.runs[rt] == nil {
		r.runs[rt] = map[string][]wrkResult{}
	}
	r.runs[rt][server] = append(r.runs[rt][server], w)
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func field(ws []wrkResult, f func(wrkResult) float64) []float64 {
	xs := make([]float64, len(ws))
	for i, w := range ws {
		xs[i] = f(w)
	}
	return xs
}

func rps(w wrkResult) float64 { return w.RPS }

// ratio compares northd with a peer run by run: the runs of one round
// ran seconds apart, so each pair saw the same machine. It returns the
// median of the per-round ratios (robust when the machine's speed steps
// between rounds, as a shared VM's does) and their range.
func ratio(northd, peer []wrkResult) (med, lo, hi float64) {
	var xs []float64
	for i := range min(len(northd), len(peer)) {
		if peer[i].RPS > 0 {
			xs = append(xs, northd[i].RPS/peer[i].RPS)
		}
	}
	if len(xs) == 0 {
		return 0, 0, 0
	}
	return median(xs), slices.Min(xs), slices.Max(xs)
}

// target is one of the goals that compare can measure.
type target struct {
	route, peer, peerRoute string
	want                   float64
	what                   string
}

var targets = []target{
	{"login", "floor", "login", 0.97, "login ≥ 0.97 × floor"},
	{"home", "floor", "home", 0.99, "GET / ≥ 0.99 × floor"},
	{"login", "nginx", "home", 1.0, "login ≥ 1.0 × nginx `return 200` (nginx's GET /)"},
	{"login", "nginx", "login", 1.0, "login ≥ 1.0 × nginx `return 200` (nginx's constant login)"},
	{"login", "nethttp", "login", 2, "login ≥ 2 × nethttp"},
	{"login", "seed", "login", 60, "login ≥ 60 × seed"},
}

func kilo(x float64) string {
	switch {
	case x >= 100000:
		return fmt.Sprintf("%.0fk", x/1000)
	case x >= 1000:
		return fmt.Sprintf("%.1fk", x/1000)
	}
	return fmt.Sprintf("%.0f", x)
}

func ms(us float64) string { return fmt.Sprintf("%.2f ms", us/1000) }

func (r *results) write() error {
	host, _ := os.Hostname()
	host = sanitize(host)
	date := time.Now().Format("2006-01-02")
	if r.o.quick {
		date += "-quick"
	}
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return err
	}
	mdPath := outPath(r.o, date, host, ".md")
	pngPath := ""
	if len(r.routes) > 0 {
		pngPath = outPath(r.o, date, host, ".png")
		if err := r.chart(pngPath); err != nil {
			return fmt.Errorf("chart: %v", err)
		}
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	if len(r.routes) > 0 {
		p("# northd and its peers under wrk: %s on %s\n\n", time.Now().Format("2006-01-02"), host)
	} else {
		p("# northd against northd under wrk: %s on %s\n\n", time.Now().Format("2006-01-02"), host)
	}
	p("Made by `%s` from the repository root", r.makeCommand())
	p(" in %v.\n\n", time.Since(r.started).Round(time.Second))
	if pngPath != "" {
		p("![requests/s per server and route](%s)\n\n", filepath.Base(pngPath))
	}

	p("## Machine\n\n")
	for _, l := range r.machine() {
		p("- %s\n", l)
	}
	p("\n## Method\n\n")
	if r.o.serverPin != nil {
		p("- Servers pinned to CPU %s (`taskset -c %s`), Go servers with `GOMAXPROCS=%d`; wrk pinned to CPU %s.\n",
			r.o.serverCPUs, r.o.serverCPUs, r.o.serverProcs, r.o.clientCPUs)
	} else {
		p("- Not pinned: servers and wrk share every CPU (Go servers `GOMAXPROCS=%d`).\n", r.o.serverProcs)
	}
	p("- wrk: %d thread(s), %d connections, %v per measurement, %d round(s); ", r.o.threads, r.o.conns, r.o.duration, r.o.rounds)
	if r.o.warmup > 0 {
		p("an unrecorded %v warm-up per server and route first.\n", r.o.warmup)
	} else {
		p("no warm-up.\n")
	}
	if len(r.routes) > 0 {
		p("- Order: route by route; in each round every server once, in turn (")
		for i, s := range r.servers {
			if i > 0 {
				p(", ")
			}
			p("%s", s.spec.name)
		}
		p("), so a slow minute of the machine hits every server alike. ")
	}
	if len(r.pairs) > 0 {
		p("- Pairs of northd against northd (")
		for i, pr := range r.pairs {
			if i > 0 {
				p(", ")
			}
			p("%s", pr.p.name)
		}
		p("), after the routes: in each round the pair's two sides once, in turn. ")
	}
	p("All servers run for the whole comparison and idle while another is measured.\n")
	if r.o.redis != nil {
		p("- northd-redis keeps its tokens and north servers in a throwaway redis-server %s (no persistence, loopback, started and stopped by compare) ", r.o.redis.version)
		if r.o.clientPin != nil {
			p("pinned to CPU %s, the load generator's, which it shares with wrk: northd's CPU %s is northd's alone, as in every other run. ", r.o.clientCPUs, r.o.serverCPUs)
		} else {
			p("(not pinned). ")
		}
		p("Its CPU is not counted as other processes' CPU.\n")
	}
	p("- Medians over the rounds; min–max is the range of the rounds; p50/p99 are the medians of each run's wrk latency percentiles. ")
	p("Server CPU is the share of one CPU the server process used during its runs (under 100%% on a one-CPU server means the client, not the server, was the limit).\n")
	p("- Other CPU is what every other process on the machine used during a run (from /proc/stat); a run during which it passed %.0f%% of a CPU was measured again (up to %d times; %d reruns in this comparison). The table shows the highest value among the kept runs.\n",
		100*r.o.maxOther, r.o.retries, r.reruns)
	p("- A ratio compares northd with the peer round by round (their runs were seconds apart): it is the median of the per-round ratios, and the range after it is the lowest and highest of them. ")
	p("Compare ratios, not raw requests/s, across machines or runs.\n\n")

	if len(r.routes) > 0 {
		r.writeRoutes(p)
	}
	if len(r.pairs) > 0 {
		r.writePairs(p)
		r.writeStore(p)
	}

	p("## Servers\n\n")
	for _, s := range r.liveServers() {
		p("- **%s**: %s.", s.spec.name, s.spec.about)
		if len(s.notes) > 0 {
			p(" Differs from the contract: %s.", strings.Join(s.notes, "; "))
		}
		if s.tlsInfo != "" {
			p(" HTTPS: %s.", s.tlsInfo)
		}
		p("\n")
	}
	for _, s := range r.skipped {
		p("- %s\n", s)
	}
	p("\n## Commands\n\n```sh\n")
	for _, c := range r.commands {
		p("%s\n", c)
	}
	p("```\n")
	if err := os.WriteFile(mdPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := r.writeJSON(outPath(r.o, date, host, ".json")); err != nil {
		return err
	}
	if pngPath != "" {
		fmt.Printf("\ncompare: wrote %s and %s\n\n", mdPath, pngPath)
	} else {
		fmt.Printf("\ncompare: wrote %s\n\n", mdPath)
	}
	// The summary tables on the terminal too.
	s := b.String()
	for _, sec := range [][2]string{{"## Requests per second", "## Every run"}, {"## northd against itself", "### Every run of the pairs"},
		{"## Store round trips", "## Servers"}} {
		if i := strings.Index(s, sec[0]); i >= 0 {
			if j := strings.Index(s[i:], sec[1]); j > 0 {
				fmt.Print(s[i : i+j])
			}
		}
	}
	return nil
}

// liveServers are every server that ran: those of the routes, then those
// only the pairs used.
func (r *results) liveServers() []*running { return r.all }

// writeRoutes writes the sections on the routes every server ran.
func (r *results) writeRoutes(p func(format string, a ...any)) {
	p("## Requests per second\n\n")
	p("| route | server | req/s (median) | min–max | p50 | p99 | server CPU | other CPU (max) | northd ÷ server |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, rt := range r.routes {
		nd := r.runs[rt.name]["northd"]
		for _, s := range r.servers {
			ws := r.runs[rt.name][s.spec.name]
			if len(ws) == 0 {
				continue
			}
			xs := field(ws, rps)
			rr := "—"
			if s.spec.name != "northd" {
				m, lo, hi := ratio(nd, ws)
				rr = fmt.Sprintf("**%.2f×** (%.2f–%.2f)", m, lo, hi)
			}
			p("| %s | %s | %s | %s–%s | %s | %s | %.0f%% | %.0f%% | %s |\n", rt.title, s.spec.name,
				commas(median(xs)), kilo(slices.Min(xs)), kilo(slices.Max(xs)),
				ms(median(field(ws, func(w wrkResult) float64 { return w.P50US }))),
				ms(median(field(ws, func(w wrkResult) float64 { return w.P99US }))),
				100*median(field(ws, func(w wrkResult) float64 { return w.ServerCPU })),
				100*slices.Max(field(ws, func(w wrkResult) float64 { return w.OtherCPU })), rr)
		}
	}

	p("\n## Targets\n\n")
	p("| target | northd req/s | peer req/s | ratio (median of rounds) | per-round range | met |\n|---|--:|--:|--:|--:|:-:|\n")
	for _, t := range targets {
		nd := r.runs[t.route]["northd"]
		pw := r.runs[t.peerRoute][t.peer]
		if len(nd) == 0 || len(pw) == 0 {
			p("| %s | | | not measured (%s or route missing) | | |\n", t.what, t.peer)
			continue
		}
		m, lo, hi := ratio(nd, pw)
		met := "no"
		switch {
		case lo >= t.want:
			met = "yes"
		case m >= t.want:
			met = "by the median only"
		}
		p("| %s | %s | %s | %.3f× | %.3f–%.3f | %s |\n", t.what, commas(median(field(nd, rps))),
			commas(median(field(pw, rps))), m, lo, hi, met)
	}
	p("\nThe idle-connection target (≤ 6 KiB RSS per keep-alive connection) is measured by `make bench-conns`.\n")

	p("\n## Every run (req/s, in round order)\n\n")
	p("A run is marked with the CPU other processes took during it when that stayed above %.0f%% of a CPU after the reruns.\n\n", 100*r.o.maxOther)
	p("| route | server | runs |\n|---|---|---|\n")
	for _, rt := range r.routes {
		for _, s := range r.servers {
			ws := r.runs[rt.name][s.spec.name]
			var parts []string
			bad := int64(0)
			for _, w := range ws {
				mark := ""
				if w.OtherCPU > r.o.maxOther {
					mark = fmt.Sprintf(" (other CPU %.0f%%)", 100*w.OtherCPU)
				}
				parts = append(parts, commas(w.RPS)+mark)
				bad += w.Unexpected
			}
			extra := ""
			if bad > 0 {
				extra = fmt.Sprintf(" (**%d unexpected statuses**)", bad)
			}
			p("| %s | %s | %s%s |\n", rt.title, s.spec.name, strings.Join(parts, " · "), extra)
		}
	}

	p("\n")
}

// makeTargets are the flags bench.mk's targets other than compare pass,
// as compareFlags lists them (by name), and the targets.
var makeTargets = []struct{ flags, target string }{
	{"-pairs login-cached,verify,https -routes none -tag auth", "make compare-auth"},
	{"-pairs login-redis,verify-redis -routes none -tag store", "make compare-store"},
}

func (r *results) makeCommand() string {
	cmd := "make compare"
	flags := compareFlags()
	for _, t := range makeTargets {
		if rest, ok := strings.CutPrefix(flags, t.flags); ok && (rest == "" || rest[0] == ' ') {
			cmd, flags = t.target, strings.TrimSpace(rest)
		}
	}
	switch {
	case r.o.quick:
		cmd += " QUICK=1"
	default:
		if r.o.rounds != 5 {
			cmd += fmt.Sprintf(" COMPARE_ROUNDS=%d", r.o.rounds)
		}
		if r.o.duration != 5*time.Second {
			cmd += " COMPARE_DURATION=" + formatSeconds(r.o.duration)
		}
	}
	if flags != "" {
		cmd += ` COMPARE_FLAGS="` + flags + `"`
	}
	return cmd
}

func commas(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func sanitize(s string) string {
	if s == "" {
		return "host"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, s)
}

// machine describes the machine, and the redis-server when one ran.
func (r *results) machine() []string {
	lines := machine()
	if r.o.redis != nil {
		lines = append(lines, "redis-server: "+r.o.redis.version)
	}
	return lines
}

// machine describes the machine for the report.
func machine() []string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	goVersion := firstLine("go", "version")
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	lines := []string{
		fmt.Sprintf("CPU: %s, %d CPUs (runtime.NumCPU)", model, runtime.NumCPU()),
		"kernel: Linux " + strings.TrimSpace(string(kernel)) + " " + runtime.GOARCH,
		"Go: " + goVersion,
	}
	if hv := hypervisor(); hv != "" {
		lines = append(lines, "virtualisation: "+hv)
	}
	if v := firstLine("wrk", "-v"); v != "" {
		lines = append(lines, "wrk: "+strings.Fields(v)[0]+" "+strings.Fields(v)[1])
	}
	if _, err := exec.LookPath("nginx"); err == nil {
		lines = append(lines, "nginx: "+firstLine("nginx", "-v"))
	}
	if v := firstLine("python3", "--version"); v != "" {
		lines = append(lines, "python3: "+v)
	}
	return lines
}

func hypervisor() string {
	out := firstLine("sh", "-c", "lscpu 2>/dev/null | grep -i 'hypervisor vendor' | cut -d: -f2")
	return strings.TrimSpace(out)
}

// rawRun is one measurement in the JSON file beside the report.
type rawRun struct {
	Pair      string    `json:"pair,omitempty"` // a pair's run: its name, and side a or b
	Side      string    `json:"side,omitempty"`
	Route     string    `json:"route"`
	Server    string    `json:"server"`
	Round     int       `json:"round"`
	Result    wrkResult `json:"wrk"`
	ServerCPU float64   `json:"server_cpu"`
	OtherCPU  float64   `json:"other_cpu"`
	// a run against northd-redis: redis-server's CPU (share of one CPU)
	// and the calls of each command it ran (INFO commandstats)
	StoreCPU   float64          `json:"store_cpu,omitempty"`
	StoreCalls map[string]int64 `json:"store_calls,omitempty"`
}

// writeJSON keeps every run, for other tools and later comparisons.
func (r *results) writeJSON(path string) error {
	var runs []rawRun
	for _, rt := range r.routes {
		for _, s := range r.servers {
			for i, w := range r.runs[rt.name][s.spec.name] {
				runs = append(runs, rawRun{Route: rt.name, Server: s.spec.name, Round: i + 1, Result: w, ServerCPU: w.ServerCPU, OtherCPU: w.OtherCPU})
			}
		}
	}
	for _, pr := range r.pairs {
		for _, x := range []struct {
			side string
			s    side
			ws   []wrkResult
		}{{"a", pr.p.a, pr.a}, {"b", pr.p.b, pr.b}} {
			for i, w := range x.ws {
				runs = append(runs, rawRun{Pair: pr.p.name, Side: x.side, Route: x.s.route, Server: x.s.server, Round: i + 1,
					Result: w, ServerCPU: w.ServerCPU, OtherCPU: w.OtherCPU, StoreCPU: w.StoreCPU, StoreCalls: w.StoreCalls})
			}
		}
	}
	doc := map[string]any{"machine": r.machine(), "commands": r.commands, "runs": runs}
	if st := r.storeSummary(); len(st) > 0 {
		doc["store_round_trips"] = st
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// compareFlags are the flags given besides the ones make compare always
// passes, as COMPARE_FLAGS would carry them.
func compareFlags() string {
	var parts []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rounds", "duration", "quick", "out":
			return
		}
		parts = append(parts, "-"+f.Name+" "+f.Value.String())
	})
	return strings.Join(parts, " ")
}
