package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeResults are two rounds of one load on both engines and the idle
// runs, with figures chosen so that the report's lines are known.
func fakeResults() *results {
	l := load{streams: 100, rate: 1000, batch: 10}
	o := &options{bin: "bin/bench", rounds: 2, duration: 2 * time.Second, publishers: 4, config: defaultConfig,
		loads: []load{l}, pin: defaultPinning}
	r := newResults(o, time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	// Every run publishes its 2,000 events in 200 batches, 2 of them late
	// (1%: not yet saturated).
	run := func(engine string, round int, peer string, p50, p99, perCPU float64) {
		r.add(runRecord{Engine: engine, Load: l, Round: round, Peer: peer, Report: eventsReport{
			Peer: peer, Mode: "latency", Streams: 100, Published: 2000, PublishesLate: 2, Delivered: 200000,
			Latency:               &quantiles{P50: p50, P99: p99, P999: 2 * p99},
			DeliveredPerCPUSecond: perCPU, PublishedShare: 1, WritesPerDelivery: 0.125,
		}})
	}
	// memory: northd 5× and 6× per CPU-second, p99 0.2× and 0.1×; its
	// p99 ÷ p50 1.5 and 2.4 (the tail goal met by the median only).
	run("memory", 1, northd, 0.002, 0.003, 500000)
	run("memory", 1, centrifugo, 0.004, 0.015, 100000)
	run("memory", 2, centrifugo, 0.004, 0.06, 100000)
	run("memory", 2, northd, 0.0025, 0.006, 600000)
	// redis: northd 3× per CPU-second, the first goal missed; p99 0.15×.
	run("redis", 1, northd, 0.004, 0.006, 300000)
	run("redis", 1, centrifugo, 0.008, 0.04, 100000)
	run("redis", 2, centrifugo, 0.008, 0.04, 100000)
	run("redis", 2, northd, 0.004, 0.006, 300000)
	for _, e := range engines {
		r.add(runRecord{Engine: e, Load: load{streams: 1000}, Idle: true, Round: 1, Peer: northd, Report: eventsReport{RSSPerStream: 4096}})
		r.add(runRecord{Engine: e, Load: load{streams: 1000}, Idle: true, Round: 1, Peer: centrifugo, Report: eventsReport{RSSPerStream: 16384}})
	}
	return r
}

func TestReport(t *testing.T) {
	r := fakeResults()
	cs := r.comparisons()
	if len(cs) != 2 {
		t.Fatalf("%d comparisons, want 2", len(cs))
	}
	gs := evalGoals(goals, cs)
	r.host, r.vers = "vm", versions{Northd: "abc", Centrifugo: "Centrifugo v6.9.1"}
	md := r.markdown("x.png", cs, gs)
	for _, want := range []string{
		"| load | server | p50 | p99 | p99.9 | deliveries per server CPU-s | published | late batches | writes per delivery |",
		"| 100 streams, 1,000 events/s, batches of 10 | northd | 2.25 ms | 4.50 ms | 9.00 ms | 550,000 | 100.0% | 1.0% | 0.125 |",
		"| 100 streams, 1,000 events/s, batches of 10 | Centrifugo | 4.00 ms | 37.50 ms | 75.00 ms | 100,000 | 100.0% | 1.0% | 0.125 |",
		"| memory | 100 streams, 1,000 events/s, batches of 10 | 1 | northd | 2,000 | 200,000 | 2.00 ms | 3.00 ms | 6.00 ms | 0.00 s | 0.00 s | 500,000 | 100.0% | 1.0% | 0.125 | |",
		"| redis | 1,000 idle streams | | centrifugo | | | | | | | | | | | | 16.0 KiB |",
		"| memory | 100 streams, 1,000 events/s, batches of 10 | **5.50×** (5.00–6.00) | **0.15×** (0.10–0.20) | **1.95×** (1.50–2.40) |",
		"| redis | 100 streams, 1,000 events/s, batches of 10 | **3.00×** (3.00–3.00) | **0.15×** (0.15–0.15) | **1.50×** (1.50–1.50) |",
		"| memory | 4.0 KiB | 16.0 KiB | 0.25× |",
		"- deliveries per server CPU-second ≥ 4 × Centrifugo's, at every load: **✗**",
		"- p99 publish-to-receive ≤ 0.25 × Centrifugo's, at every load: **✓**",
		"- at 100 streams and 1,000 events/s, northd's p99 ≤ 2 × its p50: **✓ (by the median; not every round)**",
		"Centrifugo: `centrifugo version` says “Centrifugo v6.9.1”",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report has no line\n%s\nreport:\n%s", want, md)
		}
	}
}

func TestNotes(t *testing.T) {
	r := fakeResults()
	// On redis Centrifugo took 80% in round 1 (1,600 events, 160
	// batches, 120 late: 75%) and 90% in round 2 (1,800, 180 batches, 153
	// late: 85%): medians of 85% published and 80% late. northd, on
	// memory, took all and sent 3 of its 200 batches late in both rounds
	// (1.5%). Every other run is 1% late: not over the line.
	for i := range r.runs {
		rec := &r.runs[i]
		switch {
		case rec.Idle:
		case rec.Engine == "redis" && rec.Peer == centrifugo && rec.Round == 1:
			rec.Report.PublishedShare, rec.Report.Published, rec.Report.PublishesLate = 0.8, 1600, 120
		case rec.Engine == "redis" && rec.Peer == centrifugo && rec.Round == 2:
			rec.Report.PublishedShare, rec.Report.Published, rec.Report.PublishesLate = 0.9, 1800, 153
		case rec.Engine == "memory" && rec.Peer == northd:
			rec.Report.PublishesLate = 3
		}
	}
	got := r.notes(r.comparisons())
	want := []string{
		"Published under 99% of the events asked (median of rounds): Centrifugo, redis, 100 streams, 1,000/s: 85.0%. " +
			"Such a server could not take the rate asked: it was measured at the rate it took, so its deliveries per CPU-second are its ceiling and its latency that of a saturated server.",
		"Sent late, more than one interval after they were due, on over 1% of the batches published (median of rounds): " +
			"northd, memory, 100 streams, 1,000/s: 1.5%; Centrifugo, redis, 100 streams, 1,000/s: 80.0%. " +
			"Such a server was saturated too, however much of the rate it published: loadtest's publishers (at most 4 publishes in flight) were all busy with it when batches fell due. " +
			"Each event's time is taken when its request is sent, so its latency leaves out the time the late batches waited to be sent: it is the latency of a saturated server, and understates what a publisher saw.",
	}
	if len(got) != len(want) {
		t.Fatalf("notes:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("note %d:\n %q\nwant\n %q", i, got[i], want[i])
		}
	}
}

func TestRewrite(t *testing.T) {
	// A report's JSON file written again gives the same report.
	r := fakeResults()
	r.host, r.makeCmd, r.elapsed = "vm", "make compare-streams-peers", 187*time.Second
	r.o.out = t.TempDir()
	base := filepath.Join(r.o.out, "2026-12-04-vm-streams-peers")
	if err := r.render(base); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(base + ".md")
	if err != nil {
		t.Fatal(err)
	}
	if err := rewrite(base + ".json"); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(base + ".md")
	if err != nil {
		t.Fatal(err)
	}
	note := " This report and its chart were written again from the run's JSON file (`bin/bench/streampeers -rewrite " + base + ".json`), without measuring anew."
	if want := strings.Replace(string(first), "in 3m7s.", "in 3m7s."+note, 1); string(again) != want {
		t.Errorf("rewritten report differs:\n%s\nwant\n%s", again, want)
	}
}

func TestChart(t *testing.T) {
	r := fakeResults()
	path := filepath.Join(t.TempDir(), "c.png")
	if err := chart(path, r.comparisons()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("%s is not a PNG (%d bytes)", path, len(b))
	}
}

func TestUndoNewestFirstOnce(t *testing.T) {
	u := &undoList{fns: map[int]func(){}}
	var got []string
	u.add(func() { got = append(got, "dir") })
	forget := u.add(func() { got = append(got, "stopped earlier") })
	u.add(func() { got = append(got, "server") })
	forget()
	u.run()
	u.run()
	if strings.Join(got, ",") != "server,dir" {
		t.Errorf("undone %v, want [server dir]", got)
	}
}
