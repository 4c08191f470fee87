package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPlace(t *testing.T) {
	for _, c := range []struct {
		name                   string
		ncpu                   int
		taskset, parallel      bool
		threads                int
		serverPin, clientPin   string
		serverProcs, wantThrds int
	}{
		{"pinned, 2 CPUs", 2, true, false, 0, "taskset -c 0", "taskset -c 1", 1, 1},
		{"pinned, 4 CPUs", 4, true, false, 0, "taskset -c 0", "taskset -c 1-3", 1, 1},
		{"pinned, -t 3", 4, true, false, 3, "taskset -c 0", "taskset -c 1-3", 1, 3},
		{"no taskset", 2, false, false, 0, "", "", 2, 1},
		{"one CPU", 1, true, false, 0, "", "", 1, 1},
		{"parallel, 2 CPUs", 2, true, true, 0, "", "", 2, 2},
		{"parallel, 8 CPUs, -t 4", 8, true, true, 4, "", "", 8, 4},
	} {
		pl := place(c.ncpu, c.taskset, c.parallel, c.threads)
		if got := strings.Join(pl.serverPin, " "); got != c.serverPin {
			t.Errorf("%s: server pin %q, want %q", c.name, got, c.serverPin)
		}
		if got := strings.Join(pl.clientPin, " "); got != c.clientPin {
			t.Errorf("%s: wrk pin %q, want %q", c.name, got, c.clientPin)
		}
		if pl.serverProcs != c.serverProcs || pl.threads != c.wantThrds {
			t.Errorf("%s: GOMAXPROCS %d, wrk threads %d; want %d, %d", c.name, pl.serverProcs, pl.threads, c.serverProcs, c.wantThrds)
		}
	}
	if n := (&options{parallel: true, serverProcs: 2}).nginxWorkers(); n != 2 {
		t.Errorf("parallel on 2 CPUs: %d nginx workers, want 2", n)
	}
	if n := (&options{serverProcs: 1}).nginxWorkers(); n != 1 {
		t.Errorf("pinned: %d nginx workers, want 1", n)
	}
}

func TestPipelinedRoutes(t *testing.T) {
	o := &options{wrk: "wrk", threads: 1, conns: 50, clientPin: []string{"taskset", "-c", "1"}}
	for name, want := range map[string]string{
		"home-p16":  "taskset -c 1 wrk -t1 -c50 -d2s -s bench/wrk/pipeline.lua http://127.0.0.1:8000/ -- 16 home",
		"login-p16": "taskset -c 1 wrk -t1 -c50 -d2s -s bench/wrk/pipeline.lua http://127.0.0.1:8000/ -- 16 login",
	} {
		rt, ok := routeNamed(name)
		if !ok {
			t.Fatalf("no route %s", name)
		}
		if got := strings.Join(wrkArgv(o, rt, "http://127.0.0.1:8000", 2*time.Second, nil), " "); got != want {
			t.Errorf("%s: wrkArgv = %q, want %q", name, got, want)
		}
		if rt.pipeline != 16 {
			t.Errorf("%s: depth %d, want 16", name, rt.pipeline)
		}
	}
	// Every route is in the default list; the keep-alive ones first.
	if got := routeNames(); got != "home,login,login-varied,notfound,home-p16,login-p16" {
		t.Errorf("routeNames() = %q", got)
	}
	p16, _ := routeNamed("login-p16")
	home, _ := routeNamed("home")
	for _, c := range []struct {
		rt     route
		server string
		skip   bool
	}{
		{p16, "seed", true}, {p16, "northd", false}, {p16, "floor", false}, {p16, "nginx", false}, {p16, "nethttp", false},
		{home, "seed", false},
		{verifyRoute, "floor", true}, {verifyRoute, "northd-old", false}, {verifyRoute, "northd", false},
	} {
		if got := c.rt.skipOn(specNamed(c.server)) != ""; got != c.skip {
			t.Errorf("%s on %s: skipped %v, want %v", c.rt.name, c.server, got, c.skip)
		}
	}
}

func runsOf(rps ...float64) []wrkResult {
	ws := make([]wrkResult, len(rps))
	for i, x := range rps {
		ws[i] = wrkResult{RPS: x}
	}
	return ws
}

func TestEvalTargets(t *testing.T) {
	ts := []target{
		{"login", "floor", "login", 0.95, "a"},
		{"home", "floor", "home", 0.98, "b"},
		{"login-p16", "floor", "login-p16", 0.75, "c"},
		{"home-p16", "floor", "home-p16", 0.90, "d"},
		{"login", "nginx", "home", 1.0, "e"},
	}
	bad := runsOf(500, 500, 500)
	bad[1].Unexpected = 7
	runs := map[string]map[string][]wrkResult{
		// per-round ratios 0.96, 0.99, 0.97: all clear 0.95
		"login": {"northd": runsOf(96, 198, 97), "floor": runsOf(100, 200, 100)},
		// 0.97, 0.99, 0.985: the median 0.985 clears 0.98, the lowest not
		"home": {"northd": runsOf(97, 99, 197), "floor": runsOf(100, 100, 200)},
		// 0.70, 0.72, 0.74: none clears 0.75
		"login-p16": {"northd": runsOf(700, 720, 740), "floor": runsOf(1000, 1000, 1000)},
		// would clear 0.90, but an answer of the wrong status
		"home-p16": {"northd": bad, "floor": runsOf(500, 500, 500)},
	}
	rows := evalTargets(ts, runs)
	want := []struct {
		measured bool
		med, lo  float64
		verdict  string
	}{
		{true, 0.97, 0.96, "yes"},
		{true, 0.985, 0.97, "by the median only"},
		{true, 0.72, 0.70, "no"},
		{true, 1, 1, "not judged: 7 responses of the wrong status"},
		{false, 0, 0, ""}, // no nginx
	}
	for i, w := range want {
		r := rows[i]
		if r.measured != w.measured || r.verdict != w.verdict || !near(r.med, w.med) || !near(r.lo, w.lo) {
			t.Errorf("target %s: measured %v median %.4f low %.4f %q; want %v %.4f %.4f %q",
				r.t.what, r.measured, r.med, r.lo, r.verdict, w.measured, w.med, w.lo, w.verdict)
		}
	}
	if rows[0].northd != 97 || rows[0].peer != 100 {
		t.Errorf("login medians %v %v, want 97 100", rows[0].northd, rows[0].peer)
	}
	// The goals, first in the table.
	var goals []string
	for _, tg := range targets[:6] {
		goals = append(goals, fmt.Sprintf("%s/%s/%s %.2f", tg.route, tg.peer, tg.peerRoute, tg.want))
	}
	wantGoals := []string{"login/floor/login 0.95", "home/floor/home 0.98", "login/nginx/home 1.00", "login/nginx/login 1.00",
		"login-p16/floor/login-p16 0.75", "home-p16/floor/home-p16 0.90"}
	if !slices.Equal(goals, wantGoals) {
		t.Errorf("targets %v, want %v", goals, wantGoals)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestGlance(t *testing.T) {
	home, _ := routeNamed("home")
	p16, _ := routeNamed("home-p16")
	servers := []*running{{spec: specNamed("northd")}, {spec: specNamed("floor")}, {spec: specNamed("seed")}}
	runs := map[string]map[string][]wrkResult{
		"home":     {"northd": runsOf(90, 91), "floor": runsOf(100, 100), "seed": runsOf(3, 3)},
		"home-p16": {"northd": runsOf(800), "floor": runsOf(1000)},
	}
	var got []string
	for _, row := range glance([]route{home, p16}, servers, runs) {
		got = append(got, strings.Join(row, " | "))
	}
	want := []string{
		"server | GET / | GET / pipelined-16",
		"--- | --: | --:",
		"floor | 0.91× | 0.80×",
		"seed | 30.17× | —",
	}
	if !slices.Equal(got, want) {
		t.Errorf("glance:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMakeCommandFor(t *testing.T) {
	for _, c := range []struct {
		flags  []string
		quick  bool
		rounds int
		d      time.Duration
		old    string
		newRev string
		want   string
	}{
		{nil, false, 15, 2 * time.Second, "", "", "make compare"},
		{nil, true, 1, 2 * time.Second, "", "", "make compare QUICK=1"},
		{nil, false, 9, 3 * time.Second, "", "", "make compare COMPARE_ROUNDS=9 COMPARE_DURATION=3s"},
		{[]string{"-pairs login-cached,verify,https", "-routes none", "-tag auth"}, false, 15, 2 * time.Second, "", "",
			"make compare-auth"},
		{[]string{"-pairs none", "-parallel", "-routes home,login,home-p16,login-p16", "-servers northd,floor,floor-10s,nginx"}, true, 1, 2 * time.Second, "", "",
			"make compare-parallel QUICK=1"},
		{[]string{"-pairs none", "-parallel", "-routes home,login,verify,home-p16,login-p16", "-servers northd,northd-old,floor", "-tag ab"}, false, 15, 2 * time.Second, "abc123", "",
			`make compare-ab OLD=abc123 COMPARE_FLAGS="-parallel"`},
		// NEW=<rev>: northd built from a revision, in a -bin of its own
		{[]string{"-bin bin/bench/ab", "-pairs none", "-routes home,login,verify,home-p16,login-p16", "-servers northd,northd-old,floor", "-tag ab"}, true, 1, 2 * time.Second, "abc123", "def456",
			"make compare-ab OLD=abc123 NEW=def456 QUICK=1"},
		// a flag of the target given another value: plain compare
		{[]string{"-pairs none", "-routes home", "-servers northd,northd-old", "-tag ab"}, false, 15, 2 * time.Second, "abc123", "",
			`make compare COMPARE_FLAGS="-pairs none -routes home -servers northd,northd-old -tag ab"`},
	} {
		if got := makeCommandFor(c.flags, c.quick, c.rounds, c.d, c.old, c.newRev); got != c.want {
			t.Errorf("makeCommandFor(%q) = %q, want %q", c.flags, got, c.want)
		}
	}
}

// Each target compare names in its report passes exactly those flags in
// bench.mk (besides $(_compare_args) and $(COMPARE_FLAGS)).
func TestMakeTargets(t *testing.T) {
	b, err := os.ReadFile("../../bench.mk")
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	for _, tg := range makeTargets {
		name := strings.TrimPrefix(tg.target, "make ")
		i := strings.Index(mk, "\n"+name+":")
		if i < 0 {
			t.Errorf("bench.mk has no target %s", name)
			continue
		}
		var recipe string
		for _, line := range strings.Split(mk[i+1:], "\n")[1:] {
			if strings.Contains(line, "$(BENCH_BIN)/compare ") {
				recipe = line
				break
			}
			if !strings.HasPrefix(line, "\t") {
				break
			}
		}
		_, args, ok := strings.Cut(recipe, "$(_compare_args)")
		args, _, ok2 := strings.Cut(args, "$(COMPARE_FLAGS)")
		if !ok || !ok2 {
			t.Errorf("%s: no compare line with $(_compare_args) … $(COMPARE_FLAGS): %q", name, recipe)
			continue
		}
		var got []string
		fs := strings.Fields(args)
		for j := 0; j < len(fs); j++ {
			if j+1 < len(fs) && !strings.HasPrefix(fs[j+1], "-") {
				got = append(got, fs[j]+" "+fs[j+1])
				j++
			} else {
				got = append(got, fs[j])
			}
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(tg.flags)); !slices.Equal(got, want) {
			t.Errorf("%s passes %q, compare expects %q", name, got, want)
		}
	}
}

func TestNginxConf(t *testing.T) {
	b, err := os.ReadFile("../../peers/nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConf(string(b), "/prefix", "127.0.0.1:8089", 2)
	for _, want := range []string{"\nworker_processes 2;\n", "listen 127.0.0.1:8089 backlog=4096;", "pid /prefix/nginx.pid;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("filled nginx.conf lacks %q", want)
		}
	}
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "{{") {
			t.Errorf("left unfilled: %q", line)
		}
	}
}

func TestDescribeRev(t *testing.T) {
	long := strings.Repeat("x", 100)
	for in, want := range map[string]string{
		"": "an unrecorded revision",
		"254e14474542ca96f08ed50250582dc9186d4a2a\nDefects and tests\n": "254e14474542 (“Defects and tests”)",
		"254e14474542ca96f08ed50250582dc9186d4a2a\n":                    "254e14474542",
		"abc\n" + long: "abc (“" + strings.Repeat("x", 79) + "…”)",
	} {
		if got := describeRev(in); got != want {
			t.Errorf("describeRev(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNorthdOld(t *testing.T) {
	dir := t.TempDir()
	o := &options{bin: dir}
	spec := specNamed("northd-old")
	if _, _, skip := spec.argv(o, 8001); !strings.Contains(skip, "make bench-build-old") {
		t.Errorf("without the binary: skip %q, want how to build it", skip)
	}
	if err := os.WriteFile(filepath.Join(dir, "northd-old"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "northd-old.rev"), []byte("254e14474542ca96f08ed50250582dc9186d4a2a\nDefects and tests\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	argv, _, skip := spec.argv(o, 8001)
	want := []string{filepath.Join(dir, "northd-old"), "-listen", "127.0.0.1:8001", "-admin", "off", "-log-level", "warn"}
	if skip != "" || !slices.Equal(argv, want) {
		t.Errorf("argv %q (skip %q), want %q", argv, skip, want)
	}
	if about := spec.aboutFor(o); !strings.Contains(about, "254e14474542 (“Defects and tests”)") {
		t.Errorf("about %q names no revision", about)
	}
	if got := builtRevision(o, "northd-old"); got != "254e14474542ca96f08ed50250582dc9186d4a2a" {
		t.Errorf("builtRevision(northd-old) = %q", got)
	}
	// northd: the working tree, unless built from a revision too
	if got, about := builtRevision(o, "northd"), specNamed("northd").aboutFor(o); got != "" || !strings.Contains(about, "working tree") {
		t.Errorf("northd without a .rev file: revision %q, about %q", got, about)
	}
	if err := os.WriteFile(filepath.Join(dir, "northd.rev"), []byte("d0fff9500000000000000000000000000000000a\nLazy deadlines: tests\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if about := specNamed("northd").aboutFor(o); !strings.Contains(about, "d0fff9500000 (“Lazy deadlines: tests”)") {
		t.Errorf("northd with a .rev file: about %q", about)
	}
	if !spec.goServer {
		t.Error("northd-old must run with the Go servers' GOMAXPROCS")
	}
}

func TestOutPath(t *testing.T) {
	for _, c := range []struct {
		o    options
		want string
	}{
		{options{out: "r"}, "r/2026-01-02-h.md"},
		{options{out: "r", tag: "ab"}, "r/2026-01-02-h-ab.md"},
		{options{out: "r", tag: "ab", parallel: true}, "r/2026-01-02-h-ab-parallel.md"},
		{options{out: "r", parallel: true}, "r/2026-01-02-h-parallel.md"},
		{options{out: "r", tag: "ab", parallel: true, newRev: "d0f7158e1ccb863d9f4d4c244471d918a621ec08"}, "r/2026-01-02-h-ab-d0f7158-parallel.md"},
	} {
		if got := outPath(&c.o, "2026-01-02", "h", ".md"); got != c.want {
			t.Errorf("outPath(%+v) = %q, want %q", c.o, got, c.want)
		}
	}
}
