package main

import (
	"fmt"
	"slices"
	"strings"

	"northd/bench/internal/benchutil"
)

// A pair compares northd with northd: one configuration or route (a)
// against another (b), measured in turn, a b a b …, round by round, like
// the servers of a route. Its ratio is a ÷ b, the median of the per-round
// ratios, as for the peers.
type pair struct {
	name string // as -pairs names it
	a, b side
	goal float64 // a ÷ b must reach it; 0: the ratio is reported, with no goal
	what string  // the comparison, for the report
	why  string  // what it answers, for the report
}

// side is one half of a pair: a server (a name in specs) and a route (a
// name in routes, or verify).
type side struct{ server, route string }

func (s side) label() string { return s.server + " " + s.route }

// pairs are the comparisons of the issue "Credentials and tokens that mean
// something". The wrk scripts log in as north-1 with password secret, the
// one user of northd-users' users file, so login.lua against northd-users
// is a login with the right credentials that, after the first, northd
// answers from its credential cache.
var pairs = []pair{
	{name: "login-cached", a: side{"northd-users", "login"}, b: side{"northd", "login"}, goal: 0.95,
		what: "cached login with -users ≥ 0.95 × open-mode login",
		why:  "what checking credentials costs once they are cached: northd -users answering login.lua's right credentials (a bcrypt check on the first login, cache hits after it) against northd in open mode on the same script"},
	{name: "verify", a: side{"northd-users", "verify"}, b: side{"northd-users", "home"}, goal: 0.95,
		what: "GET /north/verify ≥ 0.95 × GET /",
		why:  "what a token check costs against the cheapest route of the same server: one login before each run, then only GET /north/verify with its token, against GET /"},
	{name: "https", a: side{"northd-tls", "login"}, b: side{"northd", "login"},
		what: "HTTPS login ÷ HTTP login (reported, no goal)",
		why:  "what TLS costs on keep-alive connections (wrk's 50 connections each do one handshake, then encrypt every request and response): northd -tls-cert/-tls-key against plain northd, both in open mode, on login.lua"},
	// The issue "Many instances, one truth: tokens in Redis" (store.go).
	{name: "login-redis", a: side{"northd-redis", "login"}, b: side{"northd", "login"},
		what: "login with -store redis ÷ -store memory (reported, no goal)",
		why:  "what keeping tokens and north servers in Redis costs a login: northd -store redis://… (the login script run by EVALSHA; see \"Store round trips\") against northd's in-memory store, both in open mode, on login.lua; redis-server runs on the load generator's CPU, beside wrk"},
	{name: "verify-redis", a: side{"northd-redis", "verify"}, b: side{"northd", "verify"},
		what: "verify with -store redis ÷ -store memory (reported, no goal)",
		why:  "what a token check costs when the token is in Redis: GET /north/verify against northd -store redis://… (a GET of the token's key; see \"Store round trips\") and against northd's in-memory store, both in open mode, each with a token logged in on that same server just before each run; redis-server runs on the load generator's CPU, beside wrk"},
}

// pairNames is the -pairs default: every pair.
func pairNames() string {
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = p.name
	}
	return strings.Join(names, ",")
}

// parsePairs resolves -pairs: a comma-separated list of pair names, or
// "none" (or nothing) for none.
func parsePairs(list string) ([]pair, error) {
	var ps []pair
	for _, name := range splitList(list) {
		i := slices.IndexFunc(pairs, func(p pair) bool { return p.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown pair %q (want some of %s, or none)", name, pairNames())
		}
		ps = append(ps, pairs[i])
	}
	return ps, nil
}

// splitList splits a comma-separated flag value; "none" and "" are empty.
func splitList(s string) []string {
	if s == "" || s == "none" {
		return nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// pairResult is the runs of one pair's two sides, in round order.
type pairResult struct {
	p    pair
	a, b []wrkResult
	// origins: for a side with -store redis ("A" or "B"), where each
	// Redis command of one request came from (store.go); probeErr: why
	// that was not seen.
	origins  map[string]map[string][]string
	probeErr map[string]string
}

// pairSide is one side of a measured pair: "A" or "B", what it ran and
// its runs in round order.
type pairSide struct {
	name string
	s    side
	ws   []wrkResult
}

func (pr *pairResult) sides() [2]pairSide {
	return [2]pairSide{{"A", pr.p.a, pr.a}, {"B", pr.p.b, pr.b}}
}

// met says whether a ratio range clears a goal, as the targets of the
// peers do: "yes" when the whole per-round range does, "by the median
// only" when just the median does. A side that had responses of the
// wrong status makes the ratio meaningless.
func met(goal, m, lo float64, unexpected int64) string {
	switch {
	case unexpected > 0:
		return fmt.Sprintf("not judged: %d responses of the wrong status", unexpected)
	case goal == 0:
		return "—"
	case lo >= goal:
		return "yes"
	case m >= goal:
		return "by the median only"
	}
	return "no"
}

func unexpectedIn(ws []wrkResult) int64 {
	var n int64
	for _, w := range ws {
		n += w.Unexpected
	}
	return n
}

// writePairs writes the report's section on the pairs.
func (r *results) writePairs(p func(format string, a ...any)) {
	p("## northd against itself\n\n")
	p("Each pair is two measurements of northd, A and B, taken in turn in every round (A B A B …), as the servers of a route are; ")
	p("A ÷ B is the median of the per-round ratios, the range after it their lowest and highest. ")
	p("A goal is met when the whole range clears it, \"by the median only\" when just the median does.\n\n")
	p("| comparison | A | A req/s | A p50 / p99 | B | B req/s | B p50 / p99 | A ÷ B (median of rounds) | per-round range | met |\n")
	p("|---|---|--:|--:|---|--:|--:|--:|--:|:-:|\n")
	for _, pr := range r.pairs {
		if len(pr.a) == 0 || len(pr.b) == 0 {
			p("| %s | %s | | | %s | | | not measured | | |\n", pr.p.what, pr.p.a.label(), pr.p.b.label())
			continue
		}
		m, lo, hi := ratio(pr.a, pr.b)
		p("| %s | %s | %s | %s / %s | %s | %s | %s / %s | **%.3f×** | %.3f–%.3f | %s |\n", pr.p.what,
			pr.p.a.label(), benchutil.Commas(benchutil.Median(field(pr.a, rps))),
			ms(benchutil.Median(field(pr.a, func(w wrkResult) float64 { return w.P50US }))),
			ms(benchutil.Median(field(pr.a, func(w wrkResult) float64 { return w.P99US }))),
			pr.p.b.label(), benchutil.Commas(benchutil.Median(field(pr.b, rps))),
			ms(benchutil.Median(field(pr.b, func(w wrkResult) float64 { return w.P50US }))),
			ms(benchutil.Median(field(pr.b, func(w wrkResult) float64 { return w.P99US }))),
			m, lo, hi, met(pr.p.goal, m, lo, unexpectedIn(pr.a)+unexpectedIn(pr.b)))
	}
	p("\n")
	for _, pr := range r.pairs {
		p("- **%s** (`-pairs %s`): %s.\n", pr.p.what, pr.p.name, pr.p.why)
	}
	if r.o.auth != nil {
		p("- The users file's hash was made with %s; the certificate is %s.\n", r.o.auth.usersHow, r.o.auth.certHow)
	}
	p("\n### Every run of the pairs (req/s, in round order; server CPU, and redis-server's with -store redis)\n\n")
	p("| comparison | side | runs |\n|---|---|---|\n")
	for _, pr := range r.pairs {
		for _, s := range pr.sides() {
			var parts []string
			for _, w := range s.ws {
				mark := ""
				if w.OtherCPU > r.o.maxOther {
					mark = fmt.Sprintf(", other CPU %.0f%%", 100*w.OtherCPU)
				}
				if w.StoreCalls != nil {
					mark = fmt.Sprintf(", redis-server %.0f%%", 100*w.StoreCPU) + mark
				}
				parts = append(parts, fmt.Sprintf("%s (%.0f%%%s)", benchutil.Commas(w.RPS), 100*w.ServerCPU, mark))
			}
			extra := ""
			if n := unexpectedIn(s.ws); n > 0 {
				extra = fmt.Sprintf(" (**%d unexpected statuses**)", n)
			}
			p("| %s | %s: %s | %s%s |\n", pr.p.name, s.name, s.s.label(), strings.Join(parts, " · "), extra)
		}
	}
	p("\n")
}
