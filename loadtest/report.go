package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// reportVersion changes only when a field of Report changes meaning or goes
// away; new fields may appear without it changing.
const reportVersion = 1

// Report is the JSON report (-out). Its fields are documented in
// loadtest/README.md; latencies and durations are in seconds.
type Report struct {
	Version         int               `json:"version"`
	Scenario        string            `json:"scenario"`
	Targets         []string          `json:"targets"`
	Started         time.Time         `json:"started"`
	DurationSeconds float64           `json:"duration_seconds"`
	RateRequested   int               `json:"rate_requested"`
	Requests        uint64            `json:"requests"`
	Rate            float64           `json:"rate"`
	Throughput      float64           `json:"throughput"`
	SuccessRatio    float64           `json:"success_ratio"`
	ErrorCount      uint64            `json:"error_count"`
	Errors          map[string]uint64 `json:"errors"`
	UniqueTokens    int               `json:"unique_tokens"`
	StatusCodes     map[string]uint64 `json:"status_codes"`
	Cases           map[string]uint64 `json:"cases"`
	Latency         Quantiles         `json:"latency"`
	ServiceTime     Quantiles         `json:"service_time"`
	MaxSendLag      float64           `json:"max_send_lag"`
	CPU             *CPUUsage         `json:"cpu,omitempty"`
	SLO             float64           `json:"slo,omitempty"`
	Memory          *MemoryReport     `json:"memory,omitempty"`
	Ramp            *RampReport       `json:"ramp,omitempty"`
	Conns           *ConnsReport      `json:"conns,omitempty"`
	// Per case, when the scenario has more than one.
	CaseLatency     map[string]Quantiles         `json:"case_latency,omitempty"`
	CaseServiceTime map[string]Quantiles         `json:"case_service_time,omitempty"`
	CaseStatusCodes map[string]map[string]uint64 `json:"case_status_codes,omitempty"`
	AuthStorm       *AuthStormReport             `json:"auth_storm,omitempty"`
	Plot            string                       `json:"plot,omitempty"`
	Passed          bool                         `json:"passed"`
	Verdict         string                       `json:"verdict"`
}

// Quantiles of a latency distribution, in seconds.
type Quantiles struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

func quantiles(h *hdrhistogram.Histogram) Quantiles {
	if h.TotalCount() == 0 {
		return Quantiles{}
	}
	s := func(ns int64) float64 { return float64(ns) / 1e9 }
	return Quantiles{
		Min:  s(h.Min()),
		Mean: h.Mean() / 1e9,
		P50:  s(h.ValueAtQuantile(50)),
		P90:  s(h.ValueAtQuantile(90)),
		P99:  s(h.ValueAtQuantile(99)),
		P999: s(h.ValueAtQuantile(99.9)),
		Max:  s(h.Max()),
	}
}

// fillFrom sets the request figures of r from one step.
func (r *Report) fillFrom(st *stepStats, tokens int) {
	r.DurationSeconds = st.duration.Seconds()
	r.RateRequested = st.rateRequested
	r.Requests = st.requests
	r.Rate = st.achievedRate()
	r.ErrorCount = st.failed
	r.Errors = st.errors
	r.UniqueTokens = tokens
	r.StatusCodes = statusCounts(st.codes)
	r.Cases = st.cases
	r.Latency = quantiles(st.latency)
	r.ServiceTime = quantiles(st.service)
	r.MaxSendLag = max(st.maxLag, 0).Seconds()
	r.CPU = st.cpu
	r.CaseLatency, r.CaseServiceTime, r.CaseStatusCodes = nil, nil, nil
	if len(st.caseLatency) > 1 {
		r.CaseLatency = map[string]Quantiles{}
		r.CaseServiceTime = map[string]Quantiles{}
		r.CaseStatusCodes = map[string]map[string]uint64{}
		for name, h := range st.caseLatency {
			r.CaseLatency[name] = quantiles(h)
			r.CaseServiceTime[name] = quantiles(st.caseService[name])
			r.CaseStatusCodes[name] = statusCounts(st.caseCodes[name])
		}
	}
	if st.requests > 0 {
		r.SuccessRatio = float64(st.requests-st.failed) / float64(st.requests)
		r.Throughput = r.Rate * r.SuccessRatio
	}
}

// statusCounts keys counts by status code as text; 0 (no response) is
// left out, as the errors count it.
func statusCounts(codes map[int]uint64) map[string]uint64 {
	m := map[string]uint64{}
	for c, n := range codes {
		if c != 0 {
			m[strconv.Itoa(c)] = n
		}
	}
	return m
}

// writeText prints the human summary.
func (r *Report) writeText(w io.Writer) {
	fmt.Fprintf(w, "scenario      %s against %s\n", r.Scenario, strings.Join(r.Targets, ", "))
	fmt.Fprintf(w, "requests      %d in %s: %.1f/s sent (%d/s requested)\n", r.Requests, secs(r.DurationSeconds), r.Rate, r.RateRequested)
	fmt.Fprintf(w, "success       %.4f%% of responses verified correct (%d errors)\n", 100*r.SuccessRatio, r.ErrorCount)
	fmt.Fprintf(w, "latency       %s   (from each request's due time: corrected for coordinated omission)\n", r.Latency)
	fmt.Fprintf(w, "service time  %s   (from the actual send; max send lag %s)\n", r.ServiceTime, secs(r.MaxSendLag))
	if r.CPU != nil {
		fmt.Fprintf(w, "cpu busy      %s\n", r.CPU)
	}
	if r.UniqueTokens > 0 {
		fmt.Fprintf(w, "tokens        %d unique\n", r.UniqueTokens)
	}
	fmt.Fprintf(w, "status codes  %s\n", sortedCounts(r.StatusCodes))
	if len(r.Cases) > 1 {
		fmt.Fprintf(w, "cases         %s\n", sortedCounts(r.Cases))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors        %s\n", sortedCounts(r.Errors))
	}
	if m := r.Memory; m != nil {
		m.writeText(w)
	}
	if a := r.AuthStorm; a != nil {
		a.writeText(w)
	}
	if c := r.Conns; c != nil {
		fmt.Fprintf(w, "idle conns    %d opened (%d failed), %d still open at the end\n", c.Opened, c.Failed, c.OpenAtEnd)
		if c.RSSBefore > 0 && c.Opened > 0 {
			fmt.Fprintf(w, "conn memory   server RSS %.1f MiB before, %.1f MiB with them idle: %.1f KiB a connection\n",
				float64(c.RSSBefore)/(1<<20), float64(c.RSSWithIdle)/(1<<20), float64(c.RSSWithIdle-c.RSSBefore)/1024/float64(c.Opened))
		}
	}
	if r.Plot != "" {
		fmt.Fprintf(w, "plot          %s\n", r.Plot)
	}
	fmt.Fprintf(w, "verdict       %s\n", r.Verdict)
}

func (q Quantiles) String() string {
	return fmt.Sprintf("min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
		secs(q.Min), secs(q.Mean), secs(q.P50), secs(q.P90), secs(q.P99), secs(q.P999), secs(q.Max))
}

// secs formats seconds as a rounded duration.
func secs(s float64) string {
	d := time.Duration(s * 1e9)
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func sortedCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// save writes the JSON report to path and the latency plot beside it (same
// name, .html).
func (r *Report) save(path string, e *engine) error {
	if e.plot != nil {
		htmlPath := strings.TrimSuffix(path, filepath.Ext(path)) + ".html"
		f, err := os.Create(htmlPath)
		if err != nil {
			return err
		}
		e.plot.Close()
		_, err = e.plot.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the plot: %w", err)
		}
		r.Plot = filepath.Base(htmlPath)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeStreamReport prints r, and writes it to out when one is named; a
// run with problems exits 1 after naming the first.
func writeStreamReport(command, out string, r any, problems []string, stdout, stderr io.Writer) int {
	b, _ := json.MarshalIndent(r, "", "  ")
	if out != "" {
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, command+":", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s\n", b)
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%s: %d problems; first: %s\n", command, len(problems), problems[0])
		return 1
	}
	return 0
}
