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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	tag      string
	maxOther float64
	retries  int

	serverPin   []string // taskset prefix for servers, or none
	clientPin   []string // taskset prefix for wrk, or none
	serverProcs int      // GOMAXPROCS for Go servers
	serverCPUs  string
	clientCPUs  string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run() error {
	o := &options{}
	var servers, rts string
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory with the northd, floor and nethttp binaries")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the report and chart")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds: each server is measured once per route per round")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one measurement")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unrecorded warm-up per server and route before the rounds")
	flag.IntVar(&o.conns, "c", 50, "wrk connections")
	flag.IntVar(&o.threads, "t", 1, "wrk threads")
	flag.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&servers, "servers", "northd,floor,floor-10s,nethttp,seed,nginx", "servers, northd first")
	flag.StringVar(&rts, "routes", "home,login,login-varied,notfound", "routes")
	flag.Float64Var(&o.maxOther, "max-other", 0.15, "rerun a measurement during which other processes used more than this share of a CPU")
	flag.IntVar(&o.retries, "retries", 3, "most reruns of one measurement on a busy machine")
	flag.StringVar(&o.tag, "tag", "", "added to the report's file name: <date>-<host>-<tag>.md")
	flag.BoolVar(&o.quick, "quick", false, "one short round for smoke runs (-rounds 1 -duration 2s -warmup 0)")
	flag.Parse()
	if o.quick {
		o.rounds, o.duration, o.warmup = 1, 2*time.Second, 0
	}
	o.servers = strings.Split(servers, ",")
	o.routes = strings.Split(rts, ",")
	if _, err := os.Stat("bench/wrk/common.lua"); err != nil {
		return errors.New("run me from the repository root (bench/wrk/common.lua not found)")
	}
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("%s is not installed: `make bench-tools` installs it (as root, on Debian)", o.wrk)
	}

	// Pin: servers on CPU 0, wrk on the others, when there are two CPUs
	// or more and taskset is here.
	n := runtime.NumCPU()
	o.serverProcs = n
	if _, err := exec.LookPath("taskset"); err == nil && n >= 2 {
		o.serverCPUs, o.serverProcs = "0", 1
		o.clientCPUs = "1"
		if n > 2 {
			o.clientCPUs = "1-" + strconv.Itoa(n-1)
		}
		o.serverPin = []string{"taskset", "-c", o.serverCPUs}
		o.clientPin = []string{"taskset", "-c", o.clientCPUs}
	} else {
		fmt.Println("compare: not pinning (one CPU, or no taskset): servers and wrk share the CPUs; ratios are rougher")
	}

	var rs []route
	for _, name := range o.routes {
		found := false
		for _, rt := range routes {
			if rt.name == name {
				rs, found = append(rs, rt), true
			}
		}
		if !found {
			return fmt.Errorf("unknown route %q", name)
		}
	}

	// Start every server once; they idle while another is measured.
	var live []*running
	defer func() {
		for _, r := range live {
			r.stop()
		}
	}()
	stopOnSignal(&live)
	var skipped []string
	for _, name := range o.servers {
		var spec *serverSpec
		for i := range specs {
			if specs[i].name == name {
				spec = &specs[i]
			}
		}
		if spec == nil {
			return fmt.Errorf("unknown server %q", name)
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
		notes, err := checkContract(r)
		if err != nil {
			return fmt.Errorf("%s does not serve the contract: %v", name, err)
		}
		r.notes = notes
		fmt.Printf("compare: %-8s on %s, pid %d: %s\n", name, addr(r.port), r.cmd.Process.Pid, strings.Join(r.argv, " "))
	}
	if len(live) == 0 || live[0].spec.name != "northd" {
		return errors.New("northd did not start")
	}

	res := newResults(o, rs, live, skipped)
	total := len(rs) * (o.rounds*len(live) + len(live))
	done := 0
	t0 := time.Now()
	for _, rt := range rs {
		if o.warmup > 0 {
			for _, r := range live {
				fmt.Printf("[%s] warm-up %s %v\n", rt.name, r.spec.name, o.warmup)
				if _, err := measure(o, live, r, rt, o.warmup); err != nil {
					return err
				}
			}
		}
		done += len(live)
		for round := 1; round <= o.rounds; round++ {
			for _, r := range live {
				w, err := measure(o, live, r, rt, o.duration)
				// On a shared machine another process can steal the
				// CPU mid-run: measure that run again, a few times.
				for retry := 1; err == nil && w.OtherCPU > o.maxOther && retry <= o.retries; retry++ {
					fmt.Printf("[%s] round %d/%d  %-8s other processes used %.0f%% of a CPU during the run: measuring again (%d/%d)\n",
						rt.name, round, o.rounds, r.spec.name, 100*w.OtherCPU, retry, o.retries)
					res.reruns++
					time.Sleep(time.Duration(retry) * time.Second)
					w, err = measure(o, live, r, rt, o.duration)
				}
				if err != nil {
					return err
				}
				done++
				res.add(rt.name, r.spec.name, w)
				left := time.Duration(float64(time.Since(t0)) / float64(done) * float64(total-done)).Round(time.Second)
				warn := ""
				if w.Unexpected > 0 {
					warn = fmt.Sprintf("  %d responses not %d!", w.Unexpected, w.Expect)
				}
				fmt.Printf("[%s] round %d/%d  %-8s %10.0f req/s  p50 %6.2f ms  p99 %7.2f ms  server CPU %3.0f%%  other %2.0f%%  (%d/%d, ~%v left)%s\n",
					rt.name, round, o.rounds, r.spec.name, w.RPS, w.P50US/1000, w.P99US/1000, 100*w.ServerCPU, 100*w.OtherCPU, done, total, left, warn)
			}
		}
	}
	res.commands = commandTemplates(o, rs, live)
	return res.write()
}

// measure runs wrk against r. When r died (on a shared machine something
// may kill it), it says how, starts it again on a new port and measures
// once more; a server that dies twice ends the comparison.
func measure(o *options, live []*running, r *running, rt route, d time.Duration) (wrkResult, error) {
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

// stopOnSignal stops the servers when compare is interrupted.
func stopOnSignal(live *[]*running) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		for _, r := range *live {
			r.stop()
		}
		os.Exit(130)
	}()
}

// commandTemplates are the exact commands, with the ports of this run.
func commandTemplates(o *options, rs []route, live []*running) []string {
	var cmds []string
	for _, r := range live {
		line := strings.Join(r.argv, " ")
		if r.spec.goServer {
			line = "GOMAXPROCS=" + strconv.Itoa(o.serverProcs) + " " + line
		}
		if r.spec.name == "seed" {
			line = "(cd bench/peers/seed && " + line + ")"
		}
		if r.tempDir != "" {
			line = strings.ReplaceAll(line, r.tempDir, "$TMPDIR/nginx") +
				"   # bench/peers/nginx/nginx.conf with {{PREFIX}} and {{LISTEN}} filled in"
		}
		cmds = append(cmds, line)
	}
	for _, rt := range rs {
		cmds = append(cmds, "WRK_CHECK=0 "+strings.Join(wrkArgv(o, rt, live[0].port, o.duration), " ")+"   # against each server's port in turn")
	}
	return cmds
}

func outPath(o *options, date, host, ext string) string {
	name := date + "-" + host
	if o.tag != "" {
		name += "-" + o.tag
	}
	return filepath.Join(o.out, name+ext)
}
