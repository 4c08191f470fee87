package main

import (
	"fmt"
	"math"
	"slices"

	"northd/bench/internal/benchutil"
)

// spread is a median with the lowest and highest of what it is the median of.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"rounds"` // how many values it is of
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	return spread{Median: benchutil.Median(xs), Min: slices.Min(xs), Max: slices.Max(xs), N: len(xs)}
}

// field is f of every report.
func field(rs []eventsReport, f func(eventsReport) float64) []float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return xs
}

// perRound is num(a[i]) ÷ den(b[i]) for every round i both ran, rounds
// with a zero denominator left out: the two runs of a round were seconds
// apart and saw the same machine, so their ratio holds when the machine's
// speed steps between rounds, which a ratio of medians would not.
func perRound(a, b []eventsReport, num, den func(eventsReport) float64) []float64 {
	var xs []float64
	for i := range min(len(a), len(b)) {
		if d := den(b[i]); d > 0 {
			xs = append(xs, num(a[i])/d)
		}
	}
	return xs
}

func p50(r eventsReport) float64        { return r.latency().P50 }
func p99(r eventsReport) float64        { return r.latency().P99 }
func p999(r eventsReport) float64       { return r.latency().P999 }
func perCPU(r eventsReport) float64     { return r.DeliveredPerCPUSecond }
func share(r eventsReport) float64      { return r.PublishedShare }
func writesPer(r eventsReport) float64  { return r.WritesPerDelivery }
func storeCPU(r eventsReport) float64   { return r.StoreCPUSeconds }
func serverCPU(r eventsReport) float64  { return r.ServerCPUSeconds }
func rssPerIdle(r eventsReport) float64 { return r.RSSPerStream }

// lateShare is the share of a run's published batches (of batch events,
// a last shorter one counted as one) that loadtest sent more than one
// interval after they were due, every publisher busy: its publishes_late
// over the batches published. A server late on most batches is saturated
// even when it publishes nearly all it is asked, since the publishers
// waited on it rather than on the clock.
func lateShare(r eventsReport, batch int) float64 {
	if r.Published <= 0 || batch <= 0 {
		return 0
	}
	return float64(r.PublishesLate) / math.Ceil(float64(r.Published)/float64(batch))
}

// peerSummary is one server's medians over the rounds of one engine and load.
type peerSummary struct {
	Rounds            int     `json:"rounds"`
	P50               float64 `json:"p50_seconds"`
	P99               float64 `json:"p99_seconds"`
	P999              float64 `json:"p99.9_seconds"`
	DeliveredPerCPU   float64 `json:"delivered_per_cpu_second"`
	PublishedShare    float64 `json:"published_share"`
	LateShare         float64 `json:"late_batches_share"` // batches sent late ÷ batches published
	WritesPerDelivery float64 `json:"writes_per_delivery"`
	ServerCPUSeconds  float64 `json:"server_cpu_seconds"`
	StoreCPUSeconds   float64 `json:"store_cpu_seconds"`
}

// summarize takes the medians of rs, runs of a load in batches of batch.
func summarize(rs []eventsReport, batch int) peerSummary {
	return peerSummary{
		Rounds:            len(rs),
		P50:               benchutil.Median(field(rs, p50)),
		P99:               benchutil.Median(field(rs, p99)),
		P999:              benchutil.Median(field(rs, p999)),
		DeliveredPerCPU:   benchutil.Median(field(rs, perCPU)),
		PublishedShare:    benchutil.Median(field(rs, share)),
		LateShare:         benchutil.Median(field(rs, func(r eventsReport) float64 { return lateShare(r, batch) })),
		WritesPerDelivery: benchutil.Median(field(rs, writesPer)),
		ServerCPUSeconds:  benchutil.Median(field(rs, serverCPU)),
		StoreCPUSeconds:   benchutil.Median(field(rs, storeCPU)),
	}
}

// comparison is one engine and load: both servers' medians and the
// per-round ratios of northd to Centrifugo.
type comparison struct {
	Engine     string      `json:"engine"`
	Load       load        `json:"load"`
	Northd     peerSummary `json:"northd"`
	Centrifugo peerSummary `json:"centrifugo"`
	// PerCPURatio: northd's deliveries per CPU-second ÷ Centrifugo's.
	PerCPURatio spread `json:"delivered_per_cpu_second_ratio"`
	// P99Ratio: northd's p99 ÷ Centrifugo's.
	P99Ratio spread `json:"p99_ratio"`
	// NorthdTail: northd's p99 ÷ its own p50, round by round.
	NorthdTail spread `json:"northd_p99_over_p50"`
}

func compare(engine string, l load, nd, cf []eventsReport) comparison {
	return comparison{
		Engine: engine, Load: l,
		Northd: summarize(nd, l.batch), Centrifugo: summarize(cf, l.batch),
		PerCPURatio: spreadOf(perRound(nd, cf, perCPU, perCPU)),
		P99Ratio:    spreadOf(perRound(nd, cf, p99, p99)),
		NorthdTail:  spreadOf(perRound(nd, nd, p99, p50)),
	}
}

// verdict is how a goal fared.
type verdict int

const (
	notMeasured verdict = iota
	missed              // the median misses it
	byMedian            // the median meets it, some round does not
	met                 // every round meets it
)

// mark is the verdict as the report's goals table shows it.
func (v verdict) mark() string {
	switch v {
	case met:
		return "✓"
	case byMedian:
		return "✓ (by the median; not every round)"
	case missed:
		return "✗"
	}
	return "not measured"
}

func (v verdict) String() string {
	return [...]string{"not measured", "missed", "met by the median only", "met"}[v]
}

// MarshalText writes the verdict's words in the JSON file.
func (v verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// judge says how s fares against a goal of at least want (atLeast) or at
// most want: met when every round clears it, by the median when only the
// median does.
func judge(s spread, want float64, atLeast bool) verdict {
	if s.N == 0 {
		return notMeasured
	}
	clears := func(x float64) bool {
		if atLeast {
			return x >= want
		}
		return x <= want
	}
	switch {
	case !clears(s.Median):
		return missed
	case atLeast && clears(s.Min), !atLeast && clears(s.Max):
		return met
	}
	return byMedian
}

// worst is the lowest of vs: a goal "at every load" is as good as its
// worst load.
func worst(vs []verdict) verdict {
	if len(vs) == 0 {
		return notMeasured
	}
	w := met
	for _, v := range vs {
		if v == notMeasured {
			return notMeasured
		}
		w = min(w, v)
	}
	return w
}

// goal is one of the goals, judged on every comparison it
// applies to.
type goal struct {
	what    string
	applies func(c comparison) bool
	measure func(c comparison) spread
	want    float64
	atLeast bool
}

var goals = []goal{
	{
		what:    "deliveries per server CPU-second ≥ 4 × Centrifugo's, at every load",
		applies: func(comparison) bool { return true },
		measure: func(c comparison) spread { return c.PerCPURatio },
		want:    4, atLeast: true,
	},
	{
		what:    "p99 publish-to-receive ≤ 0.25 × Centrifugo's, at every load",
		applies: func(comparison) bool { return true },
		measure: func(c comparison) spread { return c.P99Ratio },
		want:    0.25,
	},
	{
		what:    "at 100 streams and 1,000 events/s, northd's p99 ≤ 2 × its p50",
		applies: func(c comparison) bool { return c.Load.streams == 100 && c.Load.rate == 1000 },
		measure: func(c comparison) spread { return c.NorthdTail },
		want:    2,
	},
}

// goalRow is a goal on one engine and load.
type goalRow struct {
	Engine  string  `json:"engine"`
	Load    string  `json:"load"`
	Ratio   spread  `json:"ratio"`
	Verdict verdict `json:"verdict"`
}

// goalResult is a goal over every comparison it applies to.
type goalResult struct {
	What    string    `json:"goal"`
	Rows    []goalRow `json:"rows"`
	Verdict verdict   `json:"-"`
}

func evalGoals(gs []goal, cs []comparison) []goalResult {
	var out []goalResult
	for _, g := range gs {
		gr := goalResult{What: g.what}
		var vs []verdict
		for _, c := range cs {
			if !g.applies(c) {
				continue
			}
			s := g.measure(c)
			v := judge(s, g.want, g.atLeast)
			gr.Rows = append(gr.Rows, goalRow{Engine: c.Engine, Load: c.Load.title(), Ratio: s, Verdict: v})
			vs = append(vs, v)
		}
		gr.Verdict = worst(vs)
		out = append(out, gr)
	}
	return out
}

// ratioText is a spread of ratios as the report prints it.
func ratioText(s spread) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("**%s×** (%s–%s)", ratioNum(s.Median), ratioNum(s.Min), ratioNum(s.Max))
}

func ratioNum(x float64) string {
	switch {
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	case x >= 0.1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}
