package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"northd/bench/internal/benchutil"
)

// write writes the report (.md), every figure and run (.json) and the
// chart (.png) of a run that just ended, and prints the report's tables.
func (r *results) write() error {
	host, _ := os.Hostname()
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return err
	}
	r.elapsed = time.Since(r.started)
	r.makeCmd = makeCommand(r.o.quick, r.o.rounds, r.o.duration, flagsGiven())
	r.machineLines = r.machine()
	r.vers = readVersions(r.o.bin)
	r.host = benchutil.SafeName(host)
	return r.render(outBase(r.o.out, r.started, host, r.o.quick))
}

// render writes base.md, base.json and base.png.
func (r *results) render(base string) error {
	cs := r.comparisons()
	gs := evalGoals(goals, cs)
	if err := chart(base+".png", cs); err != nil {
		return fmt.Errorf("chart: %v", err)
	}
	md := r.markdown(filepath.Base(base+".png"), cs, gs)
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	if err := r.writeJSON(base+".json", cs, gs); err != nil {
		return err
	}
	fmt.Printf("\nstreampeers: wrote %s.md, .json and .png\n\n", base)
	if i, j := strings.Index(md, "## Results"), strings.Index(md, "## Every run"); i >= 0 && j > i {
		fmt.Print(md[i:j])
	}
	return nil
}

func (r *results) markdown(png string, cs []comparison, gs []goalResult) string {
	v := r.vers
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# northd's event streams against Centrifugo's uni_sse: %s on %s\n\n", r.started.Format("2006-01-02"), r.host)
	p("Made by `%s` from the repository root in %v.", r.makeCmd, r.elapsed.Round(time.Second))
	if r.rewrittenFrom != "" {
		p(" This report and its chart were written again from the run's JSON file (`bin/bench/streampeers -rewrite %s`), without measuring anew.", r.rewrittenFrom)
	}
	p("\n\n")
	p("![p99 and deliveries per server CPU-second, per engine and load](%s)\n\n", png)

	p("## Machine\n\n")
	for _, l := range r.machineLines {
		p("- %s\n", l)
	}
	p("\n## Versions\n\n")
	p("- northd: %s, built by `make compare-streams-peers` into %s/northd\n", v.Northd, r.o.bin)
	p("- loadtest: the same revision, built into %s/loadtest\n", r.o.bin)
	p("- Centrifugo: `centrifugo version` says “%s”; built from %s by `go install` (`make bench-centrifugo`)\n", v.Centrifugo, v.CentrifugoModule)

	p("\n## Method\n\n")
	p("- **One load generator for both**: `loadtest events` opens the streams (northd: `GET /north/events` of logged-in north servers; ")
	p("Centrifugo: `uni_sse` connections, with %s), publishes at a constant rate in batches (northd: its admin listener; Centrifugo: its HTTP API), ", r.o.config)
	p("and checks every event on every stream: each once, in order, none missing. A run with any problem ends the comparison; none did here.\n")
	p("- **Engines**: memory (each server's own process) and Redis: a throwaway redis-server (no persistence, loopback, a temporary directory) ")
	p("started afresh for every engine and load, northd with `-store redis://ADDR/0` (Redis Streams), Centrifugo with its Redis engine.\n")
	p("- **Pinning**: northd and Centrifugo on CPU %s (`taskset -c %s`, `GOMAXPROCS=1`), both running and the one not measured idle; ",
		r.o.pin.ServerCPU, r.o.pin.ServerCPU)
	p("loadtest on CPU %s (`GOMAXPROCS=1`), and redis-server beside it on CPU %s, so that the server's CPU is its own.\n", r.o.pin.LoadCPU, r.o.pin.LoadCPU)
	p("- **Rounds**: for each engine and load both servers start afresh, then %s of %v of publishing each (at most %d publishes in flight), ",
		plural(r.o.rounds, "round"), r.o.duration, r.o.publishers)
	p("the order alternating (northd then Centrifugo in odd rounds, Centrifugo then northd in even ones) so that a slow second of the machine hits both alike.\n")
	p("- **Figures**: publish-to-receive latency from the publish call to each stream's receipt (p50, p99, p99.9 of every delivery of a run); ")
	p("deliveries per server CPU-second are the events received over every stream divided by the server's CPU time during the run (its process CPU clock, in nanoseconds); ")
	p("the published share is the events published over those asked for (rate × duration): under 100%% the server could not take the rate; ")
	p("late batches are the batches loadtest sent more than one interval after they were due (all its publishers busy with the server) over the batches published: ")
	p("a server late on many was saturated even if it published all it was asked, and since each event's time is taken when its request is sent, the wait for a free publisher is not in its latency; ")
	p("writes per delivery are the server's write syscalls over its deliveries. Each table gives the median of the rounds.\n")
	p("- **Ratios** are round by round (the two runs of a round were seconds apart): the median of the per-round ratios, and after it the lowest and highest. ")
	p("A goal is ✓ when every round clears it, “✓ by the median” when only the median does.\n")
	p("- **Idle streams**: %s streams held idle (`loadtest events -mode idle`) on a fresh server of each engine: the growth of its RSS over the streams.\n\n", benchutil.Commas(idleStreams))

	p("## Results\n\n")
	for _, e := range engines {
		p("### %s engine\n\n", titleCase(e))
		p("| load | server | p50 | p99 | p99.9 | deliveries per server CPU-s | published | late batches | writes per delivery |\n")
		p("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, c := range cs {
			if c.Engine != e {
				continue
			}
			for _, x := range []struct {
				name string
				s    peerSummary
			}{{northd, c.Northd}, {"Centrifugo", c.Centrifugo}} {
				p("| %s | %s | %s | %s | %s | %s | %.1f%% | %.1f%% | %.3f |\n", c.Load.title(), x.name, msText(x.s.P50), msText(x.s.P99), msText(x.s.P999),
					benchutil.Commas(x.s.DeliveredPerCPU), 100*x.s.PublishedShare, 100*x.s.LateShare, x.s.WritesPerDelivery)
			}
		}
		p("\n")
	}
	p("### Ratios, northd ÷ Centrifugo\n\n")
	p("| engine | load | deliveries per server CPU-second | p99 | northd's p99 ÷ its p50 |\n|---|---|--:|--:|--:|\n")
	for _, c := range cs {
		p("| %s | %s | %s | %s | %s |\n", c.Engine, c.Load.title(), ratioText(c.PerCPURatio), ratioText(c.P99Ratio), ratioText(c.NorthdTail))
	}
	if ns := r.notes(cs); len(ns) > 0 {
		p("\n### Reading these figures\n\n")
		for _, n := range ns {
			p("- %s\n", n)
		}
	}
	p("\n### Idle streams\n\n")
	p("| engine | northd RSS per idle stream | Centrifugo RSS per idle stream | northd ÷ Centrifugo |\n|---|--:|--:|--:|\n")
	for _, e := range engines {
		nd, okN := r.idle(e, northd)
		cf, okC := r.idle(e, centrifugo)
		if !okN && !okC {
			continue
		}
		ratio := "–"
		if okN && okC && cf.RSSPerStream > 0 {
			ratio = ratioNum(nd.RSSPerStream/cf.RSSPerStream) + "×"
		}
		p("| %s | %s | %s | %s |\n", e, kibText(nd.RSSPerStream), kibText(cf.RSSPerStream), ratio)
	}

	p("\n## Goals\n\n")
	p("| goal | engine | load | measured (median, range of rounds) | |\n|---|---|---|--:|:-:|\n")
	for _, g := range gs {
		if len(g.Rows) == 0 {
			p("| %s | | | not measured | |\n", g.What)
		}
		for _, row := range g.Rows {
			p("| %s | %s | %s | %s | %s |\n", g.What, row.Engine, row.Load, ratioText(row.Ratio), row.Verdict.mark())
		}
	}
	p("\n")
	for _, g := range gs {
		p("- %s: **%s**\n", g.What, g.Verdict.mark())
	}
	if r.o.quick {
		p("\nA smoke run (one round of one load, -quick): it checks that everything runs; its marks are not the goals' verdict.\n")
	}

	p("\n## Every run\n\n")
	p("| engine | load | round | server | published | delivered | p50 | p99 | p99.9 | server CPU | store CPU | deliveries per CPU-s | published | late batches | writes per delivery | RSS per idle stream |\n")
	p("|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, rec := range r.runs {
		rep, lat := rec.Report, rec.Report.latency()
		if rec.Idle {
			p("| %s | %s idle streams | | %s | | | | | | | | | | | | %s |\n", rec.Engine, benchutil.Commas(float64(rec.Load.streams)), rec.Peer, kibText(rep.RSSPerStream))
			continue
		}
		p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %.2f s | %.2f s | %s | %.1f%% | %.1f%% | %.3f | |\n", rec.Engine, rec.Load.title(), rec.Round, rec.Peer,
			benchutil.Commas(float64(rep.Published)), benchutil.Commas(float64(rep.Delivered)), msText(lat.P50), msText(lat.P99), msText(lat.P999),
			rep.ServerCPUSeconds, rep.StoreCPUSeconds, benchutil.Commas(rep.DeliveredPerCPUSecond), 100*rep.PublishedShare,
			100*lateShare(rep, rec.Load.batch), rep.WritesPerDelivery)
	}
	p("\n## Commands\n\nThe first of each kind; the ports are free loopback ports, new at every start, and every run's report is kept under %s/streams-peers/.\n\n```sh\n", r.o.bin)
	for _, c := range r.commands {
		p("%s\n", c)
	}
	p("```\n")
	return b.String()
}

// notes say what limits the figures of this run: the loads a server
// could not take, publishing under 99% of the events asked or sending
// over 1% of its batches late.
func (r *results) notes(cs []comparison) []string {
	var ns []string
	var short, late []string
	for _, c := range cs {
		for _, x := range []struct {
			name string
			s    peerSummary
		}{{northd, c.Northd}, {"Centrifugo", c.Centrifugo}} {
			if x.s.Rounds == 0 {
				continue
			}
			run := x.name + ", " + c.Engine + ", " + c.Load.shortTitle()
			if x.s.PublishedShare < 0.99 {
				short = append(short, fmt.Sprintf("%s: %.1f%%", run, 100*x.s.PublishedShare))
			}
			if x.s.LateShare > 0.01 {
				late = append(late, fmt.Sprintf("%s: %.1f%%", run, 100*x.s.LateShare))
			}
		}
	}
	if len(short) > 0 {
		ns = append(ns, "Published under 99% of the events asked (median of rounds): "+strings.Join(short, "; ")+
			". Such a server could not take the rate asked: it was measured at the rate it took, so its deliveries per CPU-second are its ceiling and its latency that of a saturated server.")
	}
	if len(late) > 0 {
		ns = append(ns, fmt.Sprintf("Sent late, more than one interval after they were due, on over 1%% of the batches published (median of rounds): %s. "+
			"Such a server was saturated too, however much of the rate it published: loadtest's publishers (at most %d publishes in flight) were all busy with it when batches fell due. "+
			"Each event's time is taken when its request is sent, so its latency leaves out the time the late batches waited to be sent: it is the latency of a saturated server, and understates what a publisher saw.",
			strings.Join(late, "; "), r.o.publishers))
	}
	return ns
}

// plural is n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// idleJSON is an idle run in the JSON file.
type idleJSON struct {
	Engine     string  `json:"engine"`
	Server     string  `json:"server"`
	Streams    int     `json:"streams"`
	RSSPerIdle float64 `json:"rss_bytes_per_stream"`
}

// reportDoc is the JSON file: every figure of the report, every run, and
// what -rewrite needs to write the report again from it.
type reportDoc struct {
	Make             string       `json:"make"`
	Host             string       `json:"host"`
	Started          time.Time    `json:"started"`
	Elapsed          string       `json:"elapsed"`
	Machine          []string     `json:"machine"`
	Versions         versions     `json:"versions"`
	Pinning          pinning      `json:"pinning"`
	Bin              string       `json:"bin"`
	CentrifugoConfig string       `json:"centrifugo_config"`
	Quick            bool         `json:"quick"`
	Rounds           int          `json:"rounds"`
	Duration         string       `json:"duration"`
	Publishers       int          `json:"publishers"`
	Loads            []load       `json:"loads"`
	Comparisons      []comparison `json:"comparisons"` // what -rewrite computes again from the runs
	Goals            []goalResult `json:"goals"`       // likewise
	Idle             []idleJSON   `json:"idle"`
	Commands         []string     `json:"commands"`
	Runs             []runRecord  `json:"runs"`
}

// writeJSON writes every figure of the report and every run.
func (r *results) writeJSON(path string, cs []comparison, gs []goalResult) error {
	var idle []idleJSON
	for _, e := range engines {
		for _, peer := range peers {
			if rep, ok := r.idle(e, peer); ok {
				idle = append(idle, idleJSON{e, peer, rep.Streams, rep.RSSPerStream})
			}
		}
	}
	doc := reportDoc{
		Make: r.makeCmd, Host: r.host, Started: r.started, Elapsed: r.elapsed.Round(time.Second).String(),
		Machine: r.machineLines, Versions: r.vers, Pinning: r.o.pin,
		Bin: r.o.bin, CentrifugoConfig: r.o.config, Quick: r.o.quick,
		Rounds: r.o.rounds, Duration: r.o.duration.String(), Publishers: r.o.publishers, Loads: r.o.loads,
		Comparisons: cs, Goals: gs, Idle: idle, Commands: r.commands, Runs: r.runs,
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// rewrite writes the report, its JSON file and its chart again from the
// JSON file of an earlier run, without measuring: for a change to the
// report's code. The figures come from the runs alone; the comparisons and
// goals are computed again.
func rewrite(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// The comparisons and goals are left out: they are recomputed.
	var doc struct {
		reportDoc
		Comparisons json.RawMessage `json:"comparisons"`
		Goals       json.RawMessage `json:"goals"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	d, err := time.ParseDuration(doc.Duration)
	if err != nil {
		return fmt.Errorf("%s: duration: %v", path, err)
	}
	elapsed, err := time.ParseDuration(doc.Elapsed)
	if err != nil {
		return fmt.Errorf("%s: elapsed: %v", path, err)
	}
	if len(doc.Runs) == 0 || len(doc.Loads) == 0 {
		return fmt.Errorf("%s has no runs or no loads: not a report of streampeers", path)
	}
	o := &options{bin: doc.Bin, out: filepath.Dir(path), rounds: doc.Rounds, duration: d, publishers: doc.Publishers,
		config: doc.CentrifugoConfig, quick: doc.Quick, loads: doc.Loads, pin: doc.Pinning}
	r := newResults(o, doc.Started)
	r.runs, r.commands = doc.Runs, doc.Commands
	r.elapsed, r.makeCmd, r.machineLines, r.vers, r.host = elapsed, doc.Make, doc.Machine, doc.Versions, doc.Host
	r.rewrittenFrom = path
	return r.render(strings.TrimSuffix(path, ".json"))
}
