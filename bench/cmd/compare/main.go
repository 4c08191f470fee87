// Command compare puts northd side by side with its peers under wrk: for
// each route it runs wrk against northd and each peer in turn (A B C A B
// C…), for several rounds, with the servers pinned to one CPU and wrk to
// another, and writes a Markdown report and a bar chart.
//
// Run it from the repository root through make (`make compare`, or
// `make compare QUICK=1` for one short round), which builds the servers
// first; see bench/README.md.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The default rounds: many short ones rather than a few long ones, since
// the noise of a shared machine comes in bursts of seconds and a round's
// runs, seconds apart, see the same burst.
const (
	defaultRounds   = 15
	defaultDuration = 2 * time.Second
)

type options struct {
	bin      string
	out      string
	rounds   int
	duration time.Duration
	warmup   time.Duration
	conns    int
	threads  int
	wrk      string
	servers  []string
	routes   []string
	quick    bool
	parallel bool       // servers and wrk unpinned, on every CPU
	newRev   string     // the revision northd was built from (make compare-ab NEW=), or ""
	auth     *authFiles // users file and certificate, when a server needs them
	tag      string
	maxOther float64
	retries  int
	streams  int // event streams held open on northd while it is measured

	serverPin   []string // taskset prefix for servers, or none
	clientPin   []string // taskset prefix for wrk, or none
	serverProcs int      // GOMAXPROCS for Go servers
	serverCPUs  string
	clientCPUs  string

	// redis is the throwaway redis-server of the -store redis pairs
	// (store.go), when one runs; redisSkip says why not.
	redis     *redisServer
	redisSkip string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run() error {
	o := &options{}
	var servers, rts, prs string
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory with the northd, floor and nethttp binaries")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the report and chart")
	flag.IntVar(&o.rounds, "rounds", defaultRounds, "rounds: each server is measured once per route per round")
	flag.DurationVar(&o.duration, "duration", defaultDuration, "length of one measurement")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unrecorded warm-up per server and route before the rounds")
	flag.IntVar(&o.conns, "c", 50, "wrk connections")
	flag.IntVar(&o.threads, "t", 0, "wrk threads (0: 1 pinned, one per CPU with -parallel)")
	flag.BoolVar(&o.parallel, "parallel", false, "servers and wrk unpinned on every CPU: Go servers with GOMAXPROCS of every CPU, wrk a thread per CPU, nginx a worker per CPU (the report's name gets -parallel)")
	flag.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&servers, "servers", "northd,floor,floor-10s,nethttp,seed,nginx", "servers, northd first")
	flag.StringVar(&rts, "routes", routeNames(), "routes every server is measured on (none: only the pairs)")
	flag.StringVar(&prs, "pairs", pairNames(), "northd against northd, after the routes: "+pairNames()+" (none: no pairs)")
	flag.Float64Var(&o.maxOther, "max-other", 0.15, "rerun a measurement during which other processes used more than this share of a CPU")
	flag.IntVar(&o.retries, "retries", 3, "most reruns of one measurement on a busy machine")
	flag.StringVar(&o.tag, "tag", "", "added to the report's file name: <date>-<host>-<tag>.md")
	flag.IntVar(&o.streams, "streams", 0, "event streams held open on northd (each by its own logged-in north server) while it is measured, to show what they cost its requests")
	flag.BoolVar(&o.quick, "quick", false, "one short round for smoke runs (-rounds 1 -duration 2s -warmup 0)")
	flag.Parse()
	if o.quick {
		o.rounds, o.duration, o.warmup = 1, 2*time.Second, 0
	}
	o.servers = splitList(servers)
	o.newRev = builtRevision(o, "northd")
	o.routes = splitList(rts)
	ps, err := parsePairs(prs)
	if err != nil {
		return err
	}
	if len(o.routes) == 0 && len(ps) == 0 {
		return errors.New("nothing to measure: -routes none and -pairs none")
	}
	// The pairs with -store redis need redis-server and redis-cli: without
	// them they are left out, with one line saying so.
	var redisPairs []string
	for _, p := range ps {
		if p.needsRedis() {
			redisPairs = append(redisPairs, p.name)
		}
	}
	var skippedPairs []string
	o.redisSkip = redisMissing()
	if len(redisPairs) > 0 {
		if o.redisSkip != "" {
			line := fmt.Sprintf("pairs %s skipped: %s", strings.Join(redisPairs, ", "), o.redisSkip)
			fmt.Println("compare: " + line)
			skippedPairs = append(skippedPairs, line)
			ps = slices.DeleteFunc(ps, pair.needsRedis)
			if len(o.routes) == 0 && len(ps) == 0 {
				return errors.New("nothing left to measure")
			}
		}
	}
	if _, err := os.Stat("bench/wrk/common.lua"); err != nil {
		return errors.New("run me from the repository root (bench/wrk/common.lua not found)")
	}
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("%s is not installed: `make bench-tools` installs it (as root, on Debian)", o.wrk)
	}

	// Pinned: servers on CPU 0, wrk on the others, when there are two
	// CPUs or more and taskset is here. -parallel: nothing pinned.
	_, tsErr := exec.LookPath("taskset")
	pl := place(runtime.NumCPU(), tsErr == nil, o.parallel, o.threads)
	o.serverPin, o.clientPin, o.serverCPUs, o.clientCPUs = pl.serverPin, pl.clientPin, pl.serverCPUs, pl.clientCPUs
	o.serverProcs, o.threads = pl.serverProcs, pl.threads
	switch {
	case o.parallel:
		fmt.Printf("compare: parallel: servers and wrk unpinned on all %d CPUs, Go servers GOMAXPROCS=%d, wrk -t%d, nginx %s\n",
			runtime.NumCPU(), o.serverProcs, o.threads, plural(o.nginxWorkers(), "worker"))
	case o.serverPin == nil:
		fmt.Println("compare: not pinning (one CPU, or no taskset): servers and wrk share the CPUs; ratios are rougher")
	}

	var rs []route
	for _, name := range o.routes {
		// verify too: servers other than northd skip it (skipOn).
		rt, found := routeNamed(name)
		if !found {
			return fmt.Errorf("unknown route %q", name)
		}
		rs = append(rs, rt)
	}

	// The servers of the routes, then those the pairs need that are not
	// among them.
	names := slices.Clone(o.servers)
	if len(rs) == 0 {
		names = nil // -routes none: only the pairs' servers
	}
	matrixCount := len(names)
	for _, p := range ps {
		for _, s := range []side{p.a, p.b} {
			if !slices.Contains(names, s.server) {
				names = append(names, s.server)
			}
		}
	}
	for _, name := range names {
		if !slices.ContainsFunc(specs, func(s serverSpec) bool { return s.name == name }) {
			return fmt.Errorf("unknown server %q", name)
		}
	}
	// What compare starts or makes is undone when it ends, interrupted
	// or not.
	td := &teardown{}
	defer td.run()
	stopOnSignal(td)
	if slices.Contains(names, "northd-users") || slices.Contains(names, "northd-tls") {
		if o.auth, err = makeAuthFiles(); err != nil {
			return fmt.Errorf("making the users file and certificate: %v", err)
		}
		td.add(o.auth.remove)
	}
	if slices.ContainsFunc(names, func(n string) bool { return specNamed(n).redis }) && o.redisSkip == "" {
		// On the load generator's CPU, beside wrk: northd's CPU stays
		// northd's alone.
		if o.redis, err = startRedis(o.clientPin); err != nil {
			return err
		}
		td.add(o.redis.stop)
		fmt.Printf("compare: redis-server %s on %s, pid %d: %s\n", o.redis.version, o.redis.addr(), o.redis.cmd.Process.Pid, strings.Join(quoteAll(o.redis.argv), " "))
	}

	// Start every server once; they idle while another is measured.
	var live []*running
	skipped := skippedPairs
	byName := map[string]*running{}
	var matrix []*running // the servers of the routes
	for i, name := range names {
		var spec *serverSpec
		for j := range specs {
			if specs[j].name == name {
				spec = &specs[j]
			}
		}
		if name == "seed" {
			if _, err := os.Stat(seedSource); err != nil {
				fmt.Printf("compare: note: %s is absent, so bench/peers/seed/seed.py runs unchecked against it (go test ./bench checks it when it is there)\n", seedSource)
			}
		}
		r, skip, err := start(o, *spec)
		if err != nil {
			return err
		}
		if skip != "" {
			line := fmt.Sprintf("%s skipped: %s", name, skip)
			fmt.Println("compare: " + line)
			skipped = append(skipped, line)
			continue
		}
		live = append(live, r)
		td.add(r.stop)
		byName[name] = r
		if i < matrixCount {
			matrix = append(matrix, r)
		}
		notes, err := checkContract(r)
		if err != nil {
			return fmt.Errorf("%s does not serve the contract: %v", name, err)
		}
		r.notes = notes
		if name == "northd" && o.streams > 0 {
			stop, err := holdStreams(r, o.streams)
			if err != nil {
				return fmt.Errorf("holding %d event streams open on northd: %v", o.streams, err)
			}
			td.add(stop)
			fmt.Printf("compare: northd holds %d event streams open throughout\n", o.streams)
		}
		fmt.Printf("compare: %-8s on %s, pid %d: %s\n", name, r.baseURL(), r.cmd.Process.Pid, strings.Join(r.argv, " "))
	}
	if len(rs) > 0 && (len(matrix) == 0 || matrix[0].spec.name != "northd") {
		return errors.New("northd did not start")
	}

	res := newResults(o, rs, matrix, skipped)
	res.all = live
	var groups []group
	for _, rt := range rs {
		g := group{name: rt.name}
		for _, r := range matrix {
			if why := rt.skipOn(r.spec); why != "" {
				line := fmt.Sprintf("%s on %s: %s", r.spec.name, rt.title, why)
				fmt.Println("compare: " + line)
				res.skipped = append(res.skipped, line)
				continue
			}
			g.units = append(g.units, unit{label: r.spec.name, server: r, rt: rt,
				record: func(w wrkResult) { res.add(rt.name, r.spec.name, w) }})
		}
		groups = append(groups, g)
	}
	for _, p := range ps {
		pr := &pairResult{p: p}
		res.pairs = append(res.pairs, pr)
		ra, rb := byName[p.a.server], byName[p.b.server]
		if ra == nil || rb == nil {
			line := fmt.Sprintf("pair %s skipped: a server it needs did not start", p.name)
			fmt.Println("compare: " + line)
			res.skipped = append(res.skipped, line)
			continue
		}
		rta, _ := routeNamed(p.a.route)
		rtb, _ := routeNamed(p.b.route)
		groups = append(groups, group{name: p.name, units: []unit{
			{label: "A " + p.a.label(), server: ra, rt: rta, record: func(w wrkResult) { pr.a = append(pr.a, w) }},
			{label: "B " + p.b.label(), server: rb, rt: rtb, record: func(w wrkResult) { pr.b = append(pr.b, w) }},
		}})
	}

	total := 0
	for _, g := range groups {
		total += (o.rounds + 1) * len(g.units)
	}
	done := 0
	t0 := time.Now()
	for _, g := range groups {
		width := 8
		for _, u := range g.units {
			width = max(width, len(u.label))
		}
		if o.warmup > 0 {
			for _, u := range g.units {
				fmt.Printf("[%s] warm-up %s %v\n", g.name, u.label, o.warmup)
				if _, err := measure(o, u.server, u.rt, o.warmup); err != nil {
					return err
				}
			}
		}
		done += len(g.units)
		for round := 1; round <= o.rounds; round++ {
			for _, u := range g.units {
				w, err := measure(o, u.server, u.rt, o.duration)
				// On a shared machine another process can steal the
				// CPU mid-run: measure that run again, a few times.
				for retry := 1; err == nil && w.OtherCPU > o.maxOther && retry <= o.retries; retry++ {
					fmt.Printf("[%s] round %d/%d  %-*s other processes used %.0f%% of a CPU during the run: measuring again (%d/%d)\n",
						g.name, round, o.rounds, width, u.label, 100*w.OtherCPU, retry, o.retries)
					res.reruns++
					time.Sleep(time.Duration(retry) * time.Second)
					w, err = measure(o, u.server, u.rt, o.duration)
				}
				if err != nil {
					return err
				}
				done++
				u.record(w)
				left := time.Duration(float64(time.Since(t0)) / float64(done) * float64(total-done)).Round(time.Second)
				warn := ""
				if w.Unexpected > 0 {
					warn = fmt.Sprintf("  %d responses not %d!", w.Unexpected, w.Expect)
				}
				fmt.Printf("[%s] round %d/%d  %-*s %10.0f req/s  p50 %6.2f ms  p99 %7.2f ms  server CPU %3.0f%%  other %2.0f%%  (%d/%d, ~%v left)%s\n",
					g.name, round, o.rounds, width, u.label, w.RPS, w.P50US/1000, w.P99US/1000, 100*w.ServerCPU, 100*w.OtherCPU, done, total, left, warn)
			}
		}
	}
	probeStore(o, res.pairs, byName)
	res.commands = commandTemplates(o, rs, matrix, res.pairs, byName)
	return res.write()
}

// placement is where the servers and wrk run.
type placement struct {
	serverPin, clientPin   []string // taskset prefixes, or none
	serverCPUs, clientCPUs string
	serverProcs            int // GOMAXPROCS of the Go servers
	threads                int // wrk's
}

// place puts the servers and wrk on ncpu CPUs. Pinned (the default, with
// taskset and two CPUs or more): the servers on CPU 0 with GOMAXPROCS=1,
// wrk on the others. Parallel: nothing pinned, Go servers with
// GOMAXPROCS=ncpu and wrk with a thread per CPU, all sharing every CPU.
// threads > 0 is -t, wrk's threads in either case.
func place(ncpu int, taskset, parallel bool, threads int) placement {
	pl := placement{serverProcs: ncpu, threads: 1}
	switch {
	case parallel:
		pl.threads = ncpu
	case taskset && ncpu >= 2:
		pl.serverCPUs, pl.serverProcs = "0", 1
		pl.clientCPUs = "1"
		if ncpu > 2 {
			pl.clientCPUs = "1-" + strconv.Itoa(ncpu-1)
		}
		pl.serverPin = []string{"taskset", "-c", pl.serverCPUs}
		pl.clientPin = []string{"taskset", "-c", pl.clientCPUs}
	}
	if threads > 0 {
		pl.threads = threads
	}
	return pl
}

// nginxWorkers is the nginx peer's worker processes: one, or one per
// CPU the Go servers may use in parallel.
func (o *options) nginxWorkers() int {
	if o.parallel {
		return max(1, o.serverProcs)
	}
	return 1
}

// unit is one measurement of a round: a route on a server, and where its
// result goes.
type unit struct {
	label  string
	server *running
	rt     route
	record func(wrkResult)
}

// group is what is measured together: in every round each of its units
// once, in turn, so that a slow minute of the machine hits them alike. A
// route of the servers is a group, and so is a pair.
type group struct {
	name  string
	units []unit
}

// measure runs wrk against r. When r died (on a shared machine something
// may kill it), it says how, starts it again on a new port and measures
// once more; a server that dies twice ends the comparison.
func measure(o *options, r *running, rt route, d time.Duration) (wrkResult, error) {
	w, err := runWrk(o, r, rt, d)
	if err == nil || r.alive() {
		return w, err
	}
	if r.restarts > 0 {
		return w, fmt.Errorf("%v\n%s", err, r.exitReport())
	}
	fmt.Printf("compare: %s died during a run: %s\ncompare: starting %s again\n", r.spec.name, r.exitReport(), r.spec.name)
	nr, _, serr := start(o, r.spec)
	if serr != nil || nr == nil {
		return w, fmt.Errorf("%v; restarting %s: %v", err, r.spec.name, serr)
	}
	r.stop()
	restarts := r.restarts + 1
	*r = *nr
	r.restarts = restarts
	if r.notes, err = checkContract(r); err != nil {
		return w, err
	}
	return runWrk(o, r, rt, d)
}

// seedSource is the seed as the project received it, beside the
// repository; bench/seed_test.go checks seed.py against it.
const seedSource = "../shared/seed/000_dad61b3b2fd47fcf.txt"

// teardown is what compare must undo when it ends: the servers and
// redis-server to stop, the users file and certificate to remove. run
// undoes it, the last first, once, whether compare ended or was
// interrupted.
type teardown struct {
	mu   sync.Mutex
	fns  []func()
	done bool
}

func (t *teardown) add(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fns = append(t.fns, f)
}

func (t *teardown) run() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	for i := len(t.fns) - 1; i >= 0; i-- {
		t.fns[i]()
	}
}

// stopOnSignal undoes td when compare is interrupted.
func stopOnSignal(td *teardown) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		td.run()
		os.Exit(130)
	}()
}

// probeStore sees, for each side of a pair with -store redis, where the
// Redis commands of one request come from (store.go's monitorOrigins).
func probeStore(o *options, prs []*pairResult, byName map[string]*running) {
	if o.redis == nil {
		return
	}
	for _, pr := range prs {
		for _, x := range []struct {
			name string
			s    side
		}{{"A", pr.p.a}, {"B", pr.p.b}} {
			r := byName[x.s.server]
			if r == nil || !r.spec.redis {
				continue
			}
			if pr.origins == nil {
				pr.origins, pr.probeErr = map[string]map[string][]string{}, map[string]string{}
			}
			do, err := probeRequest(r, x.s.route)
			if err == nil {
				pr.origins[x.name], err = o.redis.monitorOrigins(do)
			}
			if err != nil {
				pr.probeErr[x.name] = err.Error()
				delete(pr.origins, x.name)
				fmt.Printf("compare: probing the Redis commands of %s %s: %v\n", pr.p.name, x.name, err)
			}
		}
	}
}

// commandTemplates are the exact commands, with the ports of this run.
// Temporary directories are named by variables, not by their paths on
// this machine.
func commandTemplates(o *options, rs []route, matrix []*running, prs []*pairResult, byName map[string]*running) []string {
	var cmds []string
	seen := map[*running]bool{}
	var servers []*running
	for _, r := range matrix {
		seen[r], servers = true, append(servers, r)
	}
	for _, pr := range prs {
		for _, s := range []side{pr.p.a, pr.p.b} {
			if r := byName[s.server]; r != nil && !seen[r] {
				seen[r], servers = true, append(servers, r)
			}
		}
	}
	for _, r := range servers {
		line := strings.Join(r.argv, " ")
		if r.spec.goServer {
			line = "GOMAXPROCS=" + strconv.Itoa(o.serverProcs) + " " + line
		}
		if r.spec.name == "seed" {
			line = "(cd bench/peers/seed && " + line + ")"
		}
		if r.tempDir != "" {
			line = strings.ReplaceAll(line, r.tempDir, "$TMPDIR/nginx") +
				"   # bench/peers/nginx/nginx.conf with {{PREFIX}}, {{LISTEN}} and {{WORKERS}} filled in"
		}
		if o.auth != nil && strings.Contains(line, o.auth.dir) {
			line = strings.ReplaceAll(line, o.auth.dir, "$AUTHDIR")
		}
		switch rev := builtRevision(o, r.spec.name); {
		case r.spec.name == "northd-old":
			line += "   # built by make bench-build-old OLD=" + cmp.Or(rev, "<rev>")
		case r.spec.name == "northd" && rev != "":
			line += "   # built by make bench-build-old NEW=" + rev
		}
		cmds = append(cmds, line)
	}
	if o.auth != nil {
		cmds = append(cmds, "# $AUTHDIR: a temporary directory compare makes and removes, with users ("+o.auth.usersHow+
			" of north-1, password secret), cert.pem and key.pem ("+o.auth.certHow+")")
	}
	if o.redis != nil {
		cmds = append([]string{o.redis.command()}, cmds...)
		cmds = append(cmds, "# before each run of northd-redis: redis-cli -p "+strconv.Itoa(o.redis.port)+
			" CONFIG RESETSTAT; after it: redis-cli -p "+strconv.Itoa(o.redis.port)+" INFO commandstats")
	}
	if len(matrix) > 0 {
		for _, rt := range rs {
			cmds = append(cmds, "WRK_CHECK=0 "+strings.Join(wrkArgv(o, rt, matrix[0].baseURL(), o.duration, nil), " ")+"   # against each server's port in turn")
		}
	}
	for _, pr := range prs {
		for _, s := range []side{pr.p.a, pr.p.b} {
			r := byName[s.server]
			rt, _ := routeNamed(s.route)
			if r == nil {
				continue
			}
			var extra []string
			comment := "   # pair " + pr.p.name + ": " + s.label()
			if rt.prepare != nil {
				token, note, _ := strings.Cut(rt.prepared, "#")
				extra = []string{strings.TrimSpace(token)}
				comment += "; " + strings.TrimSpace(note)
			}
			cmds = append(cmds, "WRK_CHECK=0 "+strings.Join(wrkArgv(o, rt, r.baseURL(), o.duration, extra), " ")+comment)
		}
	}
	return cmds
}

func outPath(o *options, date, host, ext string) string {
	name := date + "-" + host
	if o.tag != "" {
		name += "-" + o.tag
	}
	if o.newRev != "" {
		name += "-" + o.newRev[:min(7, len(o.newRev))]
	}
	if o.parallel {
		name += "-parallel"
	}
	return filepath.Join(o.out, name+ext)
}
