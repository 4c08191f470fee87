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

	"northd/bench/internal/benchutil"
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
	return benchutil.Median(xs), slices.Min(xs), slices.Max(xs)
}

// target is one of the goals that compare can measure: northd's
// route against a peer's route, as the median of the per-round ratios.
type target struct {
	route, peer, peerRoute string
	want                   float64
	what                   string
}

// targets are the goals of the issue "Per-request cost down to the
// floor" (keep-alive and pipelined-16 against the floor, keep-alive login
// against nginx), then the earlier ones against nethttp and the seed.
var targets = []target{
	{"login", "floor", "login", 0.95, "keep-alive login ≥ 0.95 × floor"},
	{"home", "floor", "home", 0.98, "keep-alive GET / ≥ 0.98 × floor"},
	{"login", "nginx", "home", 1.0, "keep-alive login ≥ 1.0 × nginx `return 200` (nginx's GET /)"},
	{"login", "nginx", "login", 1.0, "keep-alive login ≥ 1.0 × nginx `return 200` (nginx's constant login)"},
	{"login-p16", "floor", "login-p16", 0.75, "pipelined-16 login ≥ 0.75 × floor"},
	{"home-p16", "floor", "home-p16", 0.90, "pipelined-16 GET / ≥ 0.90 × floor"},
	{"login", "nethttp", "login", 2, "keep-alive login ≥ 2 × nethttp"},
	{"login", "seed", "login", 60, "keep-alive login ≥ 60 × seed"},
}

// targetRow is a target as measured: the medians of northd's and the
// peer's runs, the median and range of the per-round ratios, and whether
// it is met (met's words); measured is false when either side has no run.
type targetRow struct {
	t            target
	measured     bool
	northd, peer float64
	med, lo, hi  float64
	verdict      string
}

// evalTargets measures the targets against runs (route → server →
// rounds). A target is met when the whole per-round range clears it, "by
// the median only" when just the median does, and not judged when either
// side had answers of the wrong status.
func evalTargets(ts []target, runs map[string]map[string][]wrkResult) []targetRow {
	var rows []targetRow
	for _, t := range ts {
		nd, pw := runs[t.route]["northd"], runs[t.peerRoute][t.peer]
		row := targetRow{t: t}
		if len(nd) > 0 && len(pw) > 0 {
			row.measured = true
			row.northd, row.peer = benchutil.Median(field(nd, rps)), benchutil.Median(field(pw, rps))
			row.med, row.lo, row.hi = ratio(nd, pw)
			row.verdict = met(t.want, row.med, row.lo, unexpectedIn(nd)+unexpectedIn(pw))
		}
		rows = append(rows, row)
	}
	return rows
}

func ms(us float64) string { return fmt.Sprintf("%.2f ms", us/1000) }

func (r *results) write() error {
	host, _ := os.Hostname()
	host = benchutil.SafeName(host)
	date := time.Now().Format("2006-01-02")
	if r.o.quick {
		date += "-quick"
	}
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return err
	}
	mdPath := outPath(r.o, date, host, ".md")
	// One chart for the keep-alive routes, one for the pipelined ones:
	// their requests/s differ by ten times.
	var pngs []string
	for _, c := range []struct {
		ext       string
		pipelined bool
	}{{".png", false}, {"-pipelined.png", true}} {
		var rts []route
		for _, rt := range r.routes {
			if (rt.pipeline > 0) == c.pipelined {
				rts = append(rts, rt)
			}
		}
		if len(rts) == 0 {
			continue
		}
		path := outPath(r.o, date, host, c.ext)
		if err := r.chart(path, rts); err != nil {
			return fmt.Errorf("chart: %v", err)
		}
		pngs = append(pngs, path)
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := ""
	if r.o.parallel {
		mode = ", parallel (servers and wrk unpinned on every CPU)"
	}
	if len(r.routes) > 0 {
		p("# northd and its peers under wrk%s: %s on %s\n\n", mode, time.Now().Format("2006-01-02"), host)
	} else {
		p("# northd against northd under wrk%s: %s on %s\n\n", mode, time.Now().Format("2006-01-02"), host)
	}
	p("Made by `%s` from the repository root", r.makeCommand())
	p(" in %v.\n\n", time.Since(r.started).Round(time.Second))
	for _, png := range pngs {
		p("![requests/s per server and route](%s)\n\n", filepath.Base(png))
	}

	p("## Machine\n\n")
	for _, l := range r.machine() {
		p("- %s\n", l)
	}
	p("\n## Method\n\n")
	switch {
	case r.o.parallel:
		p("- **Parallel**: nothing pinned; servers and wrk share all %d CPUs. Go servers with `GOMAXPROCS=%d`, wrk with %s, nginx with %s. ",
			runtime.NumCPU(), r.o.serverProcs, plural(r.o.threads, "thread"), plural(r.o.nginxWorkers(), "worker"))
		p("On a 2-CPU machine the server and its load generator compete for the same two CPUs, so a server that leaves wrk more CPU is helped: these are not the pinned figures, and server CPU can reach 200%%.\n")
	case r.o.serverPin != nil:
		p("- Servers pinned to CPU %s (`taskset -c %s`), Go servers with `GOMAXPROCS=%d`; wrk pinned to CPU %s.\n",
			r.o.serverCPUs, r.o.serverCPUs, r.o.serverProcs, r.o.clientCPUs)
	default:
		p("- Not pinned: servers and wrk share every CPU (Go servers `GOMAXPROCS=%d`).\n", r.o.serverProcs)
	}
	p("- wrk: %s, %d connections, %v per measurement, %d round(s); ", plural(r.o.threads, "thread"), r.o.conns, r.o.duration, r.o.rounds)
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
	for _, rt := range r.routes {
		if rt.pipeline > 0 {
			p("- Pipelined routes (%s): bench/wrk/pipeline.lua writes %d requests at once on each connection and the next %d when all their answers are in (TechEmpower's plaintext method). ",
				pipelinedNames(r.routes), rt.pipeline, rt.pipeline)
			p("wrk counts every answer as a request, so req/s are answers per second; its latency is that of a whole batch of %d. Statuses are counted per answer, as for the other routes. A server that closes the connection after every answer (the seed) is not measured pipelined.\n", rt.pipeline)
			break
		}
	}
	if slices.ContainsFunc(r.servers, func(s *running) bool { return s.spec.name == "northd-old" }) {
		if builtRevision(r.o, "northd") != "" {
			p("- northd and northd-old are builds of two revisions (see Servers). northd ÷ northd-old above 1 means northd's revision is the faster.\n")
		} else {
			p("- northd is the build of the working tree when compare ran, northd-old that of an earlier revision (see Servers). northd ÷ northd-old above 1 means northd got faster since that revision.\n")
		}
	}
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
		p("- **%s**: %s.", s.spec.name, s.spec.aboutFor(r.o))
		if len(s.notes) > 0 {
			p(" Differs from the contract: %s.", strings.Join(s.notes, "; "))
		}
		if s.tlsInfo != "" {
			p(" HTTPS: %s.", s.tlsInfo)
		}
		if s.spec.name == "northd" && r.o.streams > 0 {
			p(" %d event streams (GET /north/events, one per logged-in north server) held open on it throughout.", r.o.streams)
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
	fmt.Printf("\ncompare: wrote %s\n\n", strings.Join(append([]string{mdPath}, pngs...), ", "))
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
				benchutil.Commas(benchutil.Median(xs)), benchutil.Kilo(slices.Min(xs)), benchutil.Kilo(slices.Max(xs)),
				ms(benchutil.Median(field(ws, func(w wrkResult) float64 { return w.P50US }))),
				ms(benchutil.Median(field(ws, func(w wrkResult) float64 { return w.P99US }))),
				100*benchutil.Median(field(ws, func(w wrkResult) float64 { return w.ServerCPU })),
				100*slices.Max(field(ws, func(w wrkResult) float64 { return w.OtherCPU })), rr)
		}
	}

	if len(r.routes) > 1 && len(r.servers) > 1 {
		p("\n## northd ÷ each server, route by route\n\n")
		p("The median of the per-round ratios, as in the last column above; keep-alive routes have one request in flight per connection, pipelined-16 ones sixteen.\n\n")
		for _, row := range glance(r.routes, r.servers, r.runs) {
			p("| %s |\n", strings.Join(row, " | "))
		}
	}

	p("\n## Targets\n\n")
	if r.o.parallel {
		p("Parallel run: servers and wrk share every CPU, so these ratios are of servers competing with their load generator, not the pinned figures the goals were set on.\n\n")
	}
	p("| target | northd req/s | peer req/s | ratio (median of rounds) | per-round range | met |\n|---|--:|--:|--:|--:|:-:|\n")
	for _, row := range evalTargets(targets, r.runs) {
		if !row.measured {
			p("| %s | | | not measured (%s or route missing) | | |\n", row.t.what, row.t.peer)
			continue
		}
		p("| %s | %s | %s | %.3f× | %.3f–%.3f | %s |\n", row.t.what, benchutil.Commas(row.northd), benchutil.Commas(row.peer),
			row.med, row.lo, row.hi, row.verdict)
	}
	p("\nThe idle-connection target (≤ 6 KiB RSS per keep-alive connection) is measured by `make bench-conns`.\n")

	p("\n## Every run (req/s, in round order)\n\n")
	p("A run is marked with the CPU other processes took during it when that stayed above %.0f%% of a CPU after the reruns.\n\n", 100*r.o.maxOther)
	p("| route | server | runs |\n|---|---|---|\n")
	for _, rt := range r.routes {
		for _, s := range r.servers {
			ws := r.runs[rt.name][s.spec.name]
			if len(ws) == 0 {
				continue
			}
			var parts []string
			bad := int64(0)
			for _, w := range ws {
				mark := ""
				if w.OtherCPU > r.o.maxOther {
					mark = fmt.Sprintf(" (other CPU %.0f%%)", 100*w.OtherCPU)
				}
				parts = append(parts, benchutil.Commas(w.RPS)+mark)
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

// glance is the table of northd ÷ server: a header row (server, then
// each route's title), the separator, then a row per server but northd
// with each route's median ratio ("—" where the server did not run it).
func glance(rts []route, servers []*running, runs map[string]map[string][]wrkResult) [][]string {
	head := []string{"server"}
	sep := []string{"---"}
	for _, rt := range rts {
		head, sep = append(head, rt.title), append(sep, "--:")
	}
	rows := [][]string{head, sep}
	for _, s := range servers {
		if s.spec.name == "northd" {
			continue
		}
		row := []string{s.spec.name}
		for _, rt := range rts {
			nd, ws := runs[rt.name]["northd"], runs[rt.name][s.spec.name]
			cell := "—"
			if len(nd) > 0 && len(ws) > 0 {
				m, _, _ := ratio(nd, ws)
				cell = fmt.Sprintf("%.2f×", m)
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

// makeTarget is one of bench.mk's targets that run compare with flags of
// their own, as compareFlags lists flags; old: it builds northd-old from
// the revision in OLD first.
type makeTarget struct {
	target string
	flags  []string
	old    bool
}

// makeTargets are bench.mk's targets besides compare (TestMakeTargets
// checks each against its recipe).
var makeTargets = []makeTarget{
	{"make compare-auth", []string{"-pairs login-cached,verify,https", "-routes none", "-tag auth"}, false},
	{"make compare-store", []string{"-pairs login-redis,verify-redis", "-routes none", "-tag store"}, false},
	{"make compare-parallel", []string{"-pairs none", "-parallel", "-routes home,login,home-p16,login-p16", "-servers northd,floor,floor-10s,nginx"}, false},
	{"make compare-ab", []string{"-pairs none", "-routes home,login,verify,home-p16,login-p16", "-servers northd,northd-old,floor", "-tag ab"}, true},
}

func (r *results) makeCommand() string {
	return makeCommandFor(compareFlags(), r.o.quick, r.o.rounds, r.o.duration, builtRevision(r.o, "northd-old"), builtRevision(r.o, "northd"))
}

// makeCommandFor is the make command that runs compare with flags (as
// compareFlags lists them), the rounds and the duration: the target whose
// flags are all among them (the one with the most), the rest in
// COMPARE_FLAGS. old is the revision northd-old was built from, for the
// targets that build it, and newRev the one northd was built from ("":
// the working tree), which make compare-ab NEW=<rev> builds into a
// directory of its own that it passes as -bin.
func makeCommandFor(flags []string, quick bool, rounds int, d time.Duration, old, newRev string) string {
	best := makeTarget{target: "make compare"}
	for _, t := range makeTargets {
		all := true
		for _, f := range t.flags {
			all = all && slices.Contains(flags, f)
		}
		if all && len(t.flags) > len(best.flags) {
			best = t
		}
	}
	var rest []string
	for _, f := range flags {
		if !slices.Contains(best.flags, f) && !(best.old && newRev != "" && strings.HasPrefix(f, "-bin ")) {
			rest = append(rest, f)
		}
	}
	cmd := best.target
	if best.old && old != "" {
		cmd += " OLD=" + old
	}
	if best.old && newRev != "" {
		cmd += " NEW=" + newRev
	}
	switch {
	case quick:
		cmd += " QUICK=1"
	default:
		if rounds != defaultRounds {
			cmd += fmt.Sprintf(" COMPARE_ROUNDS=%d", rounds)
		}
		if d != defaultDuration {
			cmd += " COMPARE_DURATION=" + formatSeconds(d)
		}
	}
	if len(rest) > 0 {
		cmd += ` COMPARE_FLAGS="` + strings.Join(rest, " ") + `"`
	}
	return cmd
}

// pipelinedNames lists the pipelined routes' names, each in backquotes.
func pipelinedNames(rts []route) string {
	var names []string
	for _, rt := range rts {
		if rt.pipeline > 0 {
			names = append(names, "`"+rt.name+"`")
		}
	}
	return strings.Join(names, ", ")
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
	goVersion := benchutil.FirstLine("go", "version")
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
	if v := benchutil.FirstLine("wrk", "-v"); v != "" {
		lines = append(lines, "wrk: "+strings.Fields(v)[0]+" "+strings.Fields(v)[1])
	}
	if _, err := exec.LookPath("nginx"); err == nil {
		lines = append(lines, "nginx: "+benchutil.FirstLine("nginx", "-v"))
	}
	if v := benchutil.FirstLine("python3", "--version"); v != "" {
		lines = append(lines, "python3: "+v)
	}
	return lines
}

func hypervisor() string {
	out := benchutil.FirstLine("sh", "-c", "lscpu 2>/dev/null | grep -i 'hypervisor vendor' | cut -d: -f2")
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
		for _, x := range pr.sides() {
			for i, w := range x.ws {
				runs = append(runs, rawRun{Pair: pr.p.name, Side: strings.ToLower(x.name), Route: x.s.route, Server: x.s.server, Round: i + 1,
					Result: w, ServerCPU: w.ServerCPU, OtherCPU: w.OtherCPU, StoreCPU: w.StoreCPU, StoreCalls: w.StoreCalls})
			}
		}
	}
	mode := "pinned"
	switch {
	case r.o.parallel:
		mode = "parallel"
	case r.o.serverPin == nil:
		mode = "unpinned"
	}
	doc := map[string]any{"machine": r.machine(), "commands": r.commands, "runs": runs, "mode": mode,
		"make": r.makeCommand(), "rounds": r.o.rounds, "duration": r.o.duration.String(), "wrk_threads": r.o.threads, "gomaxprocs": r.o.serverProcs}
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
// passes, as COMPARE_FLAGS would carry them, in the flags' order by name:
// "-name value", a boolean flag as "-name" (or "-name=false").
func compareFlags() []string {
	var parts []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rounds", "duration", "quick", "out":
			return
		}
		parts = append(parts, flagItem(f))
	})
	return parts
}

// flagItem is one flag as a command line gives it.
func flagItem(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		if f.Value.String() == "true" {
			return "-" + f.Name
		}
		return "-" + f.Name + "=" + f.Value.String()
	}
	return "-" + f.Name + " " + benchutil.ShellQuote(f.Value.String())
}
