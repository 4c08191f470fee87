package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// AuthStormReport is auth-storm's judgement: the known north servers'
// latency against the objective, and what the storm got.
type AuthStormReport struct {
	SLO            float64  `json:"slo"` // the known servers' p99 objective, from the due time
	NorthServers   int      `json:"north_servers"`
	StormAddresses int      `json:"storm_addresses"`
	Known          AuthSide `json:"known"`
	Storm          AuthSide `json:"storm"`
	// KnownMet: every known server's login got a fresh token, none went
	// unanswered, and their p99 is within SLO.
	KnownMet bool `json:"known_met"`
	// StormMet: the storm got only 401, 429 or 503, each as the contract
	// writes it, and every request an answer.
	StormMet bool `json:"storm_met"`
}

// AuthSide is one side of auth-storm.
type AuthSide struct {
	Requests    uint64            `json:"requests"`
	StatusCodes map[string]uint64 `json:"status_codes"`
	// Wrong counts the answers that were not right, by kind (status,
	// body, accepted, …); Unanswered the requests that got none
	// (timeouts, resets, refused connections).
	Wrong       map[string]uint64 `json:"wrong"`
	Unanswered  uint64            `json:"unanswered"`
	Latency     Quantiles         `json:"latency"`
	ServiceTime Quantiles         `json:"service_time"`
}

func authSide(st *stepStats, name string) AuthSide {
	s := AuthSide{Wrong: map[string]uint64{}, StatusCodes: map[string]uint64{}}
	h := st.caseLatency[name]
	if h == nil {
		return s
	}
	s.Requests = uint64(h.TotalCount())
	s.StatusCodes = statusCounts(st.caseCodes[name])
	for kind, n := range st.caseErrors[name] {
		if transportKinds[kind] {
			s.Unanswered += n
		} else {
			s.Wrong[kind] += n
		}
	}
	s.Latency = quantiles(h)
	s.ServiceTime = quantiles(st.caseService[name])
	return s
}

// judgeAuthStorm fills the report of one auth-storm run and says whether
// it passed, and why not. Failures the tool cannot attribute to a side
// (no-response) fail the run too.
func judgeAuthStorm(st *stepStats, slo time.Duration, north, addrs int) (*AuthStormReport, bool, string) {
	a := &AuthStormReport{SLO: slo.Seconds(), NorthServers: north, StormAddresses: addrs,
		Known: authSide(st, "known"), Storm: authSide(st, "storm")}
	knownOK := a.Known.Unanswered == 0 && len(a.Known.Wrong) == 0
	a.KnownMet = knownOK && a.Known.Requests > 0 && a.Known.Latency.P99 <= slo.Seconds()
	a.StormMet = a.Storm.Unanswered == 0 && len(a.Storm.Wrong) == 0
	unattributed := st.failed - sum(st.caseErrors["known"]) - sum(st.caseErrors["storm"])
	var why []string
	switch {
	case a.Known.Requests == 0:
		why = append(why, "no known server logged in")
	case !knownOK:
		w := fmt.Sprintf("known servers: %d wrong answers%s, %d unanswered", sum(a.Known.Wrong), parenthesized(sortedCounts(a.Known.Wrong)), a.Known.Unanswered)
		if a.Known.Wrong["status"] > 0 && a.Known.StatusCodes["429"] > 0 {
			w += " (429 for a known server: is northd trusting X-Forwarded-For from loadtest, -trusted-proxies 127.0.0.1?)"
		}
		why = append(why, w)
	case !a.KnownMet:
		why = append(why, fmt.Sprintf("known servers' p99 %s > %s", secs(a.Known.Latency.P99), slo))
	}
	if a.Storm.Requests == 0 {
		why = append(why, "no storm was sent")
	} else if !a.StormMet {
		why = append(why, fmt.Sprintf("storm: %d answers other than the contract's 401, 429 or 503%s, %d unanswered",
			sum(a.Storm.Wrong), parenthesized(sortedCounts(a.Storm.Wrong)), a.Storm.Unanswered))
	}
	if unattributed > 0 {
		why = append(why, fmt.Sprintf("%d failures of no known case", unattributed))
	}
	if len(why) > 0 {
		return a, false, "FAIL: " + joinWhy(why)
	}
	return a, true, fmt.Sprintf("PASS: known servers' p99 %s <= %s with every login right; the storm got only 401, 429 and 503, every request answered",
		secs(a.Known.Latency.P99), slo)
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// parenthesized is " (s)", or "" for an empty s.
func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func joinWhy(why []string) string {
	out := why[0]
	for _, w := range why[1:] {
		out += "; " + w
	}
	return out
}

// runAuthStorm is -scenario auth-storm: one constant-rate run of the known
// servers' logins and the storm together, judged side by side.
func runAuthStorm(ctx context.Context, e *engine, rep *Report) {
	cfg := e.cfg
	st := e.attack(ctx, cfg.scenario, cfg.rate, cfg.duration)
	rep.fillFrom(st, e.verifier.tokens.Len())
	rep.SLO = cfg.slo.Seconds()
	rep.AuthStorm, rep.Passed, rep.Verdict = judgeAuthStorm(st, cfg.slo, cfg.northServers, cfg.stormAddrs)
}

func (a *AuthStormReport) writeText(w io.Writer) {
	k, s := a.Known, a.Storm
	met := map[bool]string{true: "met", false: "NOT met"}
	fmt.Fprintf(w, "known servers %d logging in with the right password: %d logins, %d wrong, %d unanswered\n",
		a.NorthServers, k.Requests, sum(k.Wrong), k.Unanswered)
	fmt.Fprintf(w, "  latency     p50 %s  p99 %s  max %s   (service time p99 %s; p99 <= %s: %s)\n",
		secs(k.Latency.P50), secs(k.Latency.P99), secs(k.Latency.Max), secs(k.ServiceTime.P99), secs(a.SLO), met[a.KnownMet])
	fmt.Fprintf(w, "storm         %d wrong passwords from %d addresses: %s; %d other answers%s, %d unanswered (only 401/429/503: %s)\n",
		s.Requests, a.StormAddresses, sortedCounts(s.StatusCodes), sum(s.Wrong), parenthesized(sortedCounts(s.Wrong)), s.Unanswered, met[a.StormMet])
	fmt.Fprintf(w, "  latency     p50 %s  p99 %s  max %s\n", secs(s.Latency.P50), secs(s.Latency.P99), secs(s.Latency.Max))
}
