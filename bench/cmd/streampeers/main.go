// Command streampeers puts northd's event streams side by side with
// Centrifugo's unidirectional SSE (uni_sse) under one load generator,
// loadtest events, which verifies every event on every stream: for each
// engine (memory; Redis) and each load it runs both servers in turn, A B
// then B A, for several rounds, the servers pinned to one CPU and the load
// generator to the other, then measures what an idle stream costs each,
// and writes a Markdown report, a JSON file and a chart.
//
// Run it from the repository root through make (`make
// compare-streams-peers`, or with QUICK=1 for one short round of one
// load), which builds northd, loadtest and Centrifugo first; see
// bench/README.md.
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
	"strings"
	"syscall"
	"time"

	"northd/bench/internal/benchutil"
)

// Few rounds of a few seconds: every run opens its streams anew, and 2
// engines × 4 loads × 2 servers are 16 runs a round.
const (
	defaultRounds     = 5
	defaultDuration   = 2 * time.Second
	defaultPublishers = 8
	defaultConfig     = "bench/peers/centrifugo/config.json"
)

type options struct {
	bin        string
	out        string
	rounds     int
	duration   time.Duration
	publishers int
	config     string
	quick      bool
	loads      []load
	runsDir    string // where every run's JSON report is kept
	pin        pinning
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "streampeers:", err)
		undo.run()
		os.Exit(1)
	}
}

func run() error {
	o := &options{pin: defaultPinning}
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory with the northd, loadtest and centrifugo binaries; every run's JSON report is kept under it, in streams-peers/")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the report, its JSON file and its chart")
	flag.IntVar(&o.rounds, "rounds", defaultRounds, "rounds: each server is measured once per engine and load per round")
	flag.DurationVar(&o.duration, "duration", defaultDuration, "how long each run publishes")
	flag.IntVar(&o.publishers, "publishers", defaultPublishers, "loadtest events' -publishers: publishes in flight at most")
	flag.StringVar(&o.config, "centrifugo-config", defaultConfig, "Centrifugo's configuration file (its port, address and engine come from the environment)")
	rewriteFrom := flag.String("rewrite", "", "write the report, its JSON `file` and its chart again from that JSON file of an earlier run, without measuring (after a change to the report's code)")
	flag.BoolVar(&o.quick, "quick", false, "a smoke run: one round of one load ("+quickLoad.title()+"), both engines, and the idle streams")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; -h lists them)", flag.Args())
	}
	if *rewriteFrom != "" {
		return rewrite(*rewriteFrom)
	}
	o.loads = defaultLoads
	if o.quick {
		o.rounds, o.loads = 1, []load{quickLoad}
	}
	if o.rounds < 1 || o.duration <= 0 || o.publishers < 1 {
		return errors.New("-rounds, -duration and -publishers must be positive")
	}
	if err := preflight(o); err != nil {
		return err
	}
	started := time.Now()
	o.runsDir = filepath.Join(o.bin, "streams-peers", started.Format("20060102-150405"))
	if err := os.MkdirAll(o.runsDir, 0o755); err != nil {
		return err
	}
	stopOnSignal()
	defer undo.run()

	res := newResults(o, started)
	d := &driver{o: o, res: res, total: len(engines) * (len(o.loads)*o.rounds*len(peers) + len(peers))}
	fmt.Printf("streampeers: %d runs of loadtest events (%s of %v per engine and load, then the idle streams); every run's report in %s\n",
		d.total, plural(o.rounds, "round"), o.duration, o.runsDir)
	for _, engine := range engines {
		for _, l := range o.loads {
			if err := d.measureLoad(engine, l); err != nil {
				return err
			}
		}
		if err := d.measureIdle(engine); err != nil {
			return err
		}
	}
	return res.write()
}

// preflight checks what the comparison needs before anything starts, and
// says how to get what is missing.
func preflight(o *options) error {
	if _, err := os.Stat("bench/bench.mk"); err != nil {
		return errors.New("run me from the repository root (bench/bench.mk not found)")
	}
	if _, err := os.Stat(o.config); err != nil {
		return fmt.Errorf("Centrifugo's configuration %s: %v", o.config, err)
	}
	for _, b := range []string{"northd", "loadtest", "centrifugo"} {
		path := filepath.Join(o.bin, b)
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not built: make compare-streams-peers builds it", path)
		}
	}
	if runtime.NumCPU() < 2 {
		return errors.New("the servers and the load generator are pinned to CPUs of their own: this needs two CPUs or more")
	}
	for _, p := range []struct{ bin, pkg string }{{"taskset", "util-linux"}, {"redis-server", "redis-server"}} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return fmt.Errorf("%s is not installed: apt-get install %s (make bench-tools does, as root)", p.bin, p.pkg)
		}
	}
	return nil
}

// stopOnSignal stops everything the driver started when it is interrupted.
func stopOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		fmt.Fprintln(os.Stderr, "\nstreampeers: interrupted; stopping what it started")
		undo.run()
		os.Exit(130)
	}()
}

// driver runs the comparison and counts its progress.
type driver struct {
	o     *options
	res   *results
	total int
	done  int
	t0    time.Time
}

// server is a started northd or Centrifugo.
type server struct {
	peer   string
	p      *proc
	target string // base URL
	admin  string // northd's admin address
	cmd    command
}

// startPeer starts peer for the engine (rs: the redis-server, or nil),
// pinned to the servers' CPU on free loopback ports.
func (d *driver) startPeer(peer string, rs *redisServer) (*server, error) {
	redisAddr := ""
	if rs != nil {
		redisAddr = rs.addr()
	}
	s := &server{peer: peer}
	var err error
	var ports []int
	switch peer {
	case northd:
		s.p, ports, err = startServer(peer, 2, func(ps []int) command {
			s.cmd = northdCommand(d.o.bin, d.o.pin, addr(ps[0]), addr(ps[1]), redisAddr)
			return s.cmd
		})
		if err == nil {
			s.admin = addr(ports[1])
		}
	case centrifugo:
		s.p, ports, err = startServer(peer, 1, func(ps []int) command {
			s.cmd = centrifugoCommand(d.o.bin, d.o.config, d.o.pin, ps[0], redisAddr)
			return s.cmd
		})
	}
	if err != nil {
		return nil, err
	}
	s.target = "http://" + addr(ports[0])
	d.res.noteCommand(peer+" "+engineOf(rs), s.cmd, rs)
	return s, nil
}

func engineOf(rs *redisServer) string {
	if rs != nil {
		return redisEngine
	}
	return memoryEngine
}

// withRedis runs f with a fresh redis-server for the redis engine (nil
// for memory), stopped when f returns.
func (d *driver) withRedis(engine string, f func(rs *redisServer) error) error {
	if engine != redisEngine {
		return f(nil)
	}
	rs, err := startRedis(d.o.pin)
	if err != nil {
		return err
	}
	defer rs.stop()
	d.res.noteRedis(rs)
	return f(rs)
}

// measureLoad runs the rounds of one engine and load: a fresh redis-server
// (redis), northd and Centrifugo, both idle but while measured, then in
// each round loadtest events against each in turn.
func (d *driver) measureLoad(engine string, l load) error {
	return d.withRedis(engine, func(rs *redisServer) error {
		servers := map[string]*server{}
		for _, peer := range peers {
			s, err := d.startPeer(peer, rs)
			if err != nil {
				return err
			}
			defer s.p.stop()
			servers[peer] = s
		}
		for round := 1; round <= d.o.rounds; round++ {
			for _, peer := range orderOf(round) {
				rep, err := d.runOne(servers[peer], rs, engine, l, round, false)
				if err != nil {
					return err
				}
				lat := rep.latency()
				d.progress("[%s %s] round %d/%d %-10s p50 %7s  p99 %7s  p99.9 %7s  %10s deliveries/CPU-s  published %5.1f%%  late %5.1f%%",
					engine, l.shortTitle(), round, d.o.rounds, peer, msText(lat.P50), msText(lat.P99), msText(lat.P999),
					benchutil.Commas(rep.DeliveredPerCPUSecond), 100*rep.PublishedShare, 100*lateShare(rep, l.batch))
			}
		}
		return nil
	})
}

// measureIdle starts each server afresh and holds idleStreams idle
// streams on it: its RSS per stream.
func (d *driver) measureIdle(engine string) error {
	return d.withRedis(engine, func(rs *redisServer) error {
		for _, peer := range peers {
			s, err := d.startPeer(peer, rs)
			if err != nil {
				return err
			}
			rep, err := d.runOne(s, rs, engine, load{streams: idleStreams}, 1, true)
			s.p.stop()
			if err != nil {
				return err
			}
			d.progress("[%s idle] %-10s %s idle streams: %s of RSS per stream", engine, peer, benchutil.Commas(idleStreams), kibText(rep.RSSPerStream))
		}
		return nil
	})
}

// runOne runs loadtest events against s and records the report. A server
// that died is an error: its runs would not be comparable.
func (d *driver) runOne(s *server, rs *redisServer, engine string, l load, round int, idle bool) (eventsReport, error) {
	if d.t0.IsZero() {
		d.t0 = time.Now()
	}
	name := fmt.Sprintf("%s-%s-r%d-%s.json", engine, l.name(), round, s.peer)
	if idle {
		name = fmt.Sprintf("%s-idle-%s.json", engine, s.peer)
	}
	r := loadRun{peer: s.peer, target: s.target, admin: s.admin, idle: idle, l: l, duration: d.o.duration,
		publishers: d.o.publishers, pid: s.p.pid(), out: filepath.Join(d.o.runsDir, name),
		loadtestBin: filepath.Join(d.o.bin, "loadtest")}
	if s.peer == centrifugo {
		r.config = d.o.config
	}
	if rs != nil {
		r.storePID = rs.pid()
	}
	rep, c, err := runLoadtest(d.o.pin, r)
	if !s.p.alive() {
		return rep, fmt.Errorf("%s died during the run: %s\n%s", s.peer, s.p.cmd.ProcessState, s.p.output())
	}
	if err != nil {
		return rep, err
	}
	d.res.add(runRecord{Engine: engine, Load: l, Idle: idle, Round: round, Peer: s.peer, File: r.out, Command: c.String(), Report: rep})
	d.res.noteCommand(loadtestKind(s.peer, idle), c, rs)
	d.done++
	return rep, nil
}

func loadtestKind(peer string, idle bool) string {
	if idle {
		return "loadtest idle " + peer
	}
	return "loadtest " + peer
}

// progress prints a line with the runs done and the time left.
func (d *driver) progress(format string, a ...any) {
	left := time.Duration(float64(time.Since(d.t0)) / float64(d.done) * float64(d.total-d.done)).Round(time.Second)
	fmt.Printf(format+"  (%d/%d, ~%v left)\n", append(a, d.done, d.total, left)...)
}

func msText(seconds float64) string { return fmt.Sprintf("%.2f ms", seconds*1000) }

func kibText(bytes float64) string { return fmt.Sprintf("%.1f KiB", bytes/1024) }

// flagsGiven are the flags given besides those make always passes, as
// STREAMS_PEERS_FLAGS would carry them.
func flagsGiven() []string {
	var parts []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rounds", "duration", "quick", "out", "rewrite":
			return
		}
		parts = append(parts, "-"+f.Name+" "+benchutil.ShellQuote(f.Value.String()))
	})
	return parts
}

// makeCommand is the make command that runs the driver as it ran.
func makeCommand(quick bool, rounds int, d time.Duration, flags []string) string {
	cmd := "make compare-streams-peers"
	if quick {
		cmd += " QUICK=1"
	} else {
		if rounds != defaultRounds {
			cmd += fmt.Sprintf(" STREAMS_PEERS_ROUNDS=%d", rounds)
		}
		if d != defaultDuration {
			cmd += " STREAMS_PEERS_DURATION=" + d.String()
		}
	}
	if len(flags) > 0 {
		cmd += ` STREAMS_PEERS_FLAGS="` + strings.Join(flags, " ") + `"`
	}
	return cmd
}
