package main

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/auth"
	"northd/internal/netx"
	"northd/internal/wire"
)

// route labels requests in metrics.
type route uint8

const (
	routeHome route = iota
	routeLogin
	routeVerify
	routeLogout
	routeHealthz
	routeReadyz
	routeNotFound
	routeMethodNotAllowed
	routeOptions
	routeUnreadable // fasthttp could not read the request
	routeCount
)

var routeNames = [routeCount]string{"home", "login", "verify", "logout", "healthz", "readyz", "not_found", "method_not_allowed", "options", "unreadable"}

// countedStatuses are the statuses northd answers; any other lands in the
// last slot as status="other".
var countedStatuses = [...]int{200, 204, 400, 403, 404, 405, 408, 409, 413, 429, 431, 500, 503}

// requestDurationBuckets reach down to 25µs: a login is answered in
// microseconds, and the default buckets would put every request in one.
var requestDurationBuckets = [...]float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 500e-3, 1, 5}

// subsystemMetrics are one subsystem's series in the process's metrics set.
// Counting allocates nothing.
//
// What every request counts (its route and status, its duration, a login)
// goes into one of requestShards shards, picked by the connection, each on
// cache lines of its own: requests on different cores then touch different
// memory, where one shared counter's cache line would bounce between the
// cores and one histogram's mutex would queue them. /metrics sums the
// shards; its output is what one counter and one histogram would give.
type subsystemMetrics struct {
	set       *metrics.Set
	subsystem string // label value

	shards [requestShards]requestShard
	// listed marks the request series already in the set: a series is
	// added at its first request, so /metrics shows only what happened.
	listed [routeCount][len(countedStatuses) + 1]atomic.Bool

	loginRejections  [wire.ProblemCount]*metrics.Counter
	loginFailures    [auth.OutcomeCount]*metrics.Counter // credentials refused; auth.OK unused
	claimRefusals    [claimAnswerCount]*metrics.Counter  // right credentials, an ip the login may not claim
	verifications    [wire.BearerProblemCount]*metrics.Counter
	logouts          [wire.BearerProblemCount]*metrics.Counter
	storeUnavailable *metrics.Counter
}

func newSubsystemMetrics(set *metrics.Set, s *subsystem) *subsystemMetrics {
	m := &subsystemMetrics{set: set, subsystem: s.name}
	label := `subsystem="` + s.name + `"`
	m.listDuration(`northd_request_duration_seconds`, label)
	set.NewGauge(`northd_logins_total{`+label+`}`, func() float64 {
		return float64(m.sum(func(sh *requestShard) uint64 { return sh.logins.Load() }))
	})
	for p := wire.ProblemEmptyBody; p < wire.ProblemCount; p++ {
		m.loginRejections[p] = set.NewCounter(`northd_login_rejections_total{` + label + `,reason="` + p.Reason() + `"}`)
	}
	for o := auth.WrongPassword; o < auth.OutcomeCount; o++ {
		m.loginFailures[o] = set.NewCounter(`northd_login_failures_total{` + label + `,reason="` + o.Reason() + `"}`)
	}
	for a := claimRefusedAnswer; a < claimAnswerCount; a++ {
		m.claimRefusals[a] = set.NewCounter(`northd_login_failures_total{` + label + `,reason="` + claimAnswerReasons[a] + `"}`)
	}
	for p := wire.BearerOK; p < wire.BearerProblemCount; p++ {
		m.verifications[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="verify",result="` + p.Reason() + `"}`)
		m.logouts[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="logout",result="` + p.Reason() + `"}`)
	}
	m.storeUnavailable = set.NewCounter(`northd_store_unavailable_total{` + label + `}`)
	set.NewGauge(`northd_open_connections{`+label+`}`, func() float64 { return float64(s.conns.OpenConns()) })
	// Connections refused by the listener got an answer too, so they are
	// requests like any other to whoever counts answers (a load balancer
	// does), under route="refused": 503 over -max-conns, 429 over
	// -max-conns-per-ip. The listener keeps the counts, read at scrape
	// time; both series are there from the start.
	for _, r := range []struct {
		reason netx.Refusal
		status string
	}{{netx.RefusedMaxConns, "503"}, {netx.RefusedPerIP, "429"}} {
		set.NewGauge(`northd_requests_total{`+label+`,route="refused",status="`+r.status+`"}`, func() float64 { return float64(s.refusals(r.reason)) })
	}
	return m
}

// refusals reports how many connections the subsystem's listener refused
// for r.
func (s *subsystem) refusals(r netx.Refusal) uint64 { return s.conns.Refusals(r) }

// observed wraps h so that each request it answers is counted under rt.
func (s *subsystem) observed(rt route, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		s.metrics.observe(rt, ctx)
	}
}

// requestShards spreads per-request counting over this many shards, a
// power of two.
const requestShards = 32

// requestShard is one shard of what requests count. Its size is a whole
// number of cache lines, so no two shards share one.
type requestShard struct {
	requests [routeCount][len(countedStatuses) + 1]atomic.Uint64
	// durations counts requests by the first bucket of
	// requestDurationBuckets they fit; the last slot, those over all.
	durations      [len(requestDurationBuckets) + 1]atomic.Uint64
	durationsNanos atomic.Uint64
	logins         atomic.Uint64
	_              [64 - ((int(routeCount)*(len(countedStatuses)+1)+len(requestDurationBuckets)+1+2)*8)%64]byte
}

// shardOf picks the shard of a request: by its connection, so that one
// connection's requests, served by one goroutine, always count in one.
func (m *subsystemMetrics) shardOf(ctx *fasthttp.RequestCtx) *requestShard {
	return &m.shards[ctx.ConnID()&(requestShards-1)]
}

func (m *subsystemMetrics) sum(field func(*requestShard) uint64) uint64 {
	var n uint64
	for i := range m.shards {
		n += field(&m.shards[i])
	}
	return n
}

func (m *subsystemMetrics) observe(rt route, ctx *fasthttp.RequestCtx) {
	status := ctx.Response.StatusCode()
	slot := len(countedStatuses)
	for i, st := range countedStatuses {
		if st == status {
			slot = i
			break
		}
	}
	sh := m.shardOf(ctx)
	sh.requests[rt][slot].Add(1)
	if !m.listed[rt][slot].Load() {
		m.listRequests(rt, slot)
	}
	// fasthttp stamps a request's start once it has read it whole, so an
	// unreadable request has no duration.
	if rt != routeUnreadable {
		d := time.Since(ctx.Time())
		b := 0
		for b < len(requestDurationBuckets) && d > requestDurationBounds[b] {
			b++
		}
		sh.durations[b].Add(1)
		sh.durationsNanos.Add(uint64(d))
	}
}

// requestDurationBounds are requestDurationBuckets as durations, so that
// a request's is compared without a float conversion.
var requestDurationBounds = func() (d [len(requestDurationBuckets)]time.Duration) {
	for i, s := range requestDurationBuckets {
		d[i] = time.Duration(s * float64(time.Second))
	}
	return d
}()

// listRequests adds the series of one route and status to the set, once.
func (m *subsystemMetrics) listRequests(rt route, slot int) {
	if m.listed[rt][slot].Swap(true) {
		return
	}
	status := "other"
	if slot < len(countedStatuses) {
		status = strconv.Itoa(countedStatuses[slot])
	}
	m.set.GetOrCreateGauge(`northd_requests_total{subsystem="`+m.subsystem+`",route="`+routeNames[rt]+`",status="`+status+`"}`, func() float64 {
		return float64(m.sum(func(sh *requestShard) uint64 { return sh.requests[rt][slot].Load() }))
	})
}

// listDuration adds the duration histogram's series, as a Prometheus
// histogram writes them: cumulative _bucket{le=…}, _sum and _count.
func (m *subsystemMetrics) listDuration(name, label string) {
	for b, ub := range requestDurationBuckets {
		m.set.NewGauge(fmt.Sprintf("%s_bucket{%s,le=\"%v\"}", name, label, ub), func() float64 {
			var n uint64
			for i := 0; i <= b; i++ {
				n += m.sum(func(sh *requestShard) uint64 { return sh.durations[i].Load() })
			}
			return float64(n)
		})
	}
	count := func() float64 {
		var n uint64
		for i := range len(requestDurationBuckets) + 1 {
			n += m.sum(func(sh *requestShard) uint64 { return sh.durations[i].Load() })
		}
		return float64(n)
	}
	m.set.NewGauge(name+`_bucket{`+label+`,le="+Inf"}`, count)
	m.set.NewGauge(name+`_sum{`+label+`}`, func() float64 {
		return time.Duration(m.sum(func(sh *requestShard) uint64 { return sh.durationsNanos.Load() })).Seconds()
	})
	m.set.NewGauge(name+`_count{`+label+`}`, count)
}
