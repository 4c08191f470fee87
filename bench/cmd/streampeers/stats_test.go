package main

import (
	"reflect"
	"testing"
)

// rep is a report with the figures the ratios read.
func rep(p50, p99, perCPU float64) eventsReport {
	return eventsReport{Latency: &quantiles{P50: p50, P99: p99}, DeliveredPerCPUSecond: perCPU}
}

func TestPerRoundRatios(t *testing.T) {
	// The machine steps from slow to fast after round 2: every round's
	// ratio is 5, where the ratio of the medians (800 ÷ 150) would be 5.33.
	// Latencies in powers of two, so that the ratios are exact.
	nd := []eventsReport{rep(0.5, 1, 500), rep(0.5, 1, 500), rep(0.5, 1, 800), rep(0.5, 1, 800), rep(0.5, 1, 800)}
	cf := []eventsReport{rep(2, 4, 100), rep(2, 4, 100), rep(2, 8, 160), rep(2, 8, 160), rep(2, 8, 160)}
	got := spreadOf(perRound(nd, cf, perCPU, perCPU))
	if want := (spread{Median: 5, Min: 5, Max: 5, N: 5}); got != want {
		t.Errorf("deliveries per CPU-second ratio = %+v, want %+v", got, want)
	}
	got = spreadOf(perRound(nd, cf, p99, p99))
	if want := (spread{Median: 0.125, Min: 0.125, Max: 0.25, N: 5}); got != want {
		t.Errorf("p99 ratio = %+v, want %+v", got, want)
	}
	got = spreadOf(perRound(nd, nd, p99, p50))
	if want := (spread{Median: 2, Min: 2, Max: 2, N: 5}); got != want {
		t.Errorf("northd's p99 ÷ p50 = %+v, want %+v", got, want)
	}
}

func TestPerRoundSkipsZeroAndUnpaired(t *testing.T) {
	// Round 2's Centrifugo has no CPU figure, and northd ran a fourth
	// round Centrifugo did not: both left out.
	nd := []eventsReport{rep(0, 0, 300), rep(0, 0, 900), rep(0, 0, 400), rep(0, 0, 1000)}
	cf := []eventsReport{rep(0, 0, 100), rep(0, 0, 0), rep(0, 0, 200)}
	if got, want := perRound(nd, cf, perCPU, perCPU), []float64{3, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("perRound = %v, want %v", got, want)
	}
	if got := spreadOf(nil); got != (spread{}) {
		t.Errorf("spreadOf(nil) = %+v, want the zero spread", got)
	}
}

func TestSummarize(t *testing.T) {
	// Batches of 10: 200, 100 and 180 batches published, of which 4, 75
	// and 9 late (2%, 75%, 5%).
	rs := []eventsReport{
		{Latency: &quantiles{P50: 0.001, P99: 0.004, P999: 0.010}, DeliveredPerCPUSecond: 900, Published: 2000, PublishedShare: 1, PublishesLate: 4, WritesPerDelivery: 0.1},
		{Latency: &quantiles{P50: 0.003, P99: 0.002, P999: 0.030}, DeliveredPerCPUSecond: 100, Published: 1000, PublishedShare: 0.5, PublishesLate: 75, WritesPerDelivery: 0.3},
		{Latency: &quantiles{P50: 0.002, P99: 0.008, P999: 0.020}, DeliveredPerCPUSecond: 500, Published: 1800, PublishedShare: 0.9, PublishesLate: 9, WritesPerDelivery: 0.2},
	}
	got := summarize(rs, 10)
	want := peerSummary{Rounds: 3, P50: 0.002, P99: 0.004, P999: 0.020, DeliveredPerCPU: 500, PublishedShare: 0.9, LateShare: 0.05, WritesPerDelivery: 0.2}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
}

func TestLateShare(t *testing.T) {
	for _, c := range []struct {
		name            string
		published, late int64
		batch           int
		want            float64
	}{
		{"none late", 2000, 0, 10, 0},
		{"a quarter of 200 batches", 2000, 50, 10, 0.25},
		{"every batch", 10000, 1000, 10, 1},
		// 995 events are 99 batches of 10 and one of 5: 100 batches.
		{"a last short batch counts as one", 995, 100, 10, 1},
		{"batches of 100", 2000, 1, 100, 0.05},
		{"nothing published", 0, 0, 10, 0},
		{"no batch size", 2000, 5, 0, 0},
	} {
		if got := lateShare(eventsReport{Published: c.published, PublishesLate: c.late}, c.batch); got != c.want {
			t.Errorf("%s: lateShare = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name    string
		s       spread
		want    float64
		atLeast bool
		v       verdict
	}{
		{"none", spread{}, 4, true, notMeasured},
		{"every round ≥", spread{Median: 5, Min: 4, Max: 6, N: 5}, 4, true, met},
		{"median ≥, one round under", spread{Median: 5, Min: 3.9, Max: 6, N: 5}, 4, true, byMedian},
		{"median under", spread{Median: 3.99, Min: 3, Max: 6, N: 5}, 4, true, missed},
		{"every round ≤", spread{Median: 0.2, Min: 0.1, Max: 0.25, N: 5}, 0.25, false, met},
		{"median ≤, one round over", spread{Median: 0.2, Min: 0.1, Max: 0.3, N: 5}, 0.25, false, byMedian},
		{"median over", spread{Median: 0.26, Min: 0.1, Max: 0.3, N: 5}, 0.25, false, missed},
	} {
		if got := judge(c.s, c.want, c.atLeast); got != c.v {
			t.Errorf("%s: judge = %v, want %v", c.name, got, c.v)
		}
	}
}

func TestWorst(t *testing.T) {
	for _, c := range []struct {
		vs   []verdict
		want verdict
	}{
		{nil, notMeasured},
		{[]verdict{met, met}, met},
		{[]verdict{met, byMedian, met}, byMedian},
		{[]verdict{byMedian, missed, met}, missed},
		{[]verdict{met, notMeasured}, notMeasured},
	} {
		if got := worst(c.vs); got != c.want {
			t.Errorf("worst(%v) = %v, want %v", c.vs, got, c.want)
		}
	}
}

func TestEvalGoals(t *testing.T) {
	l1k, l10k := load{100, 1000, 10}, load{100, 10000, 10}
	cs := []comparison{
		{Engine: "memory", Load: l1k,
			PerCPURatio: spread{Median: 6, Min: 5, Max: 7, N: 5}, P99Ratio: spread{Median: 0.2, Min: 0.1, Max: 0.3, N: 5}, NorthdTail: spread{Median: 1.5, Min: 1.2, Max: 1.9, N: 5}},
		{Engine: "memory", Load: l10k,
			PerCPURatio: spread{Median: 3, Min: 2, Max: 4.5, N: 5}, P99Ratio: spread{Median: 0.1, Min: 0.05, Max: 0.2, N: 5}, NorthdTail: spread{Median: 9, Min: 8, Max: 10, N: 5}},
		{Engine: "redis", Load: l1k,
			PerCPURatio: spread{Median: 4.5, Min: 4.1, Max: 5, N: 5}, P99Ratio: spread{Median: 0.24, Min: 0.2, Max: 0.25, N: 5}, NorthdTail: spread{Median: 2.1, Min: 1.8, Max: 2.5, N: 5}},
	}
	got := evalGoals(goals, cs)
	if len(got) != 3 {
		t.Fatalf("%d goals, want 3", len(got))
	}
	// ≥ 4 × Centrifugo's per CPU-second: memory at 10,000/s misses.
	if g := got[0]; g.Verdict != missed || len(g.Rows) != 3 || g.Rows[0].Verdict != met || g.Rows[1].Verdict != missed || g.Rows[2].Verdict != met {
		t.Errorf("per CPU-second goal: %+v", g)
	}
	// p99 ≤ 0.25 ×: memory at 1,000/s by the median only.
	if g := got[1]; g.Verdict != byMedian || g.Rows[0].Verdict != byMedian || g.Rows[1].Verdict != met || g.Rows[2].Verdict != met {
		t.Errorf("p99 goal: %+v", g)
	}
	// p99 ≤ 2 × p50: only the 100-stream 1,000/s loads, memory met,
	// redis missed (10,000/s's 9× does not count).
	if g := got[2]; g.Verdict != missed || len(g.Rows) != 2 || g.Rows[0].Engine != "memory" || g.Rows[0].Verdict != met ||
		g.Rows[1].Engine != "redis" || g.Rows[1].Verdict != missed {
		t.Errorf("tail goal: %+v", g)
	}
}

func TestRatioText(t *testing.T) {
	for _, c := range []struct {
		s    spread
		want string
	}{
		{spread{}, "–"},
		{spread{Median: 4.5, Min: 3.25, Max: 12.34, N: 5}, "**4.50×** (3.25–12.3)"},
		{spread{Median: 0.0812, Min: 0.05, Max: 0.1, N: 5}, "**0.081×** (0.050–0.10)"},
	} {
		if got := ratioText(c.s); got != c.want {
			t.Errorf("ratioText(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}
