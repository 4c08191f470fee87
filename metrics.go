package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
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
var countedStatuses = [...]int{200, 204, 400, 404, 405, 408, 413, 429, 431, 500, 503}

// requestDurationBuckets reach down to 25µs: a login is answered in
// microseconds, and the default buckets would put every request in one.
var requestDurationBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 500e-3, 1, 5}

// subsystemMetrics are one subsystem's series in the process's metrics set.
// Counting allocates nothing: request counters are created on first use
// and kept in a fixed table.
type subsystemMetrics struct {
	set       *metrics.Set
	subsystem string // label value

	requests         [routeCount][len(countedStatuses) + 1]atomic.Pointer[metrics.Counter]
	duration         *metrics.PrometheusHistogram
	logins           *metrics.Counter
	loginRejections  [problemCount]*metrics.Counter
	loginFailures    [authOutcomeCount]*metrics.Counter // credentials refused; authOK unused
	verifications    [bearerProblemCount]*metrics.Counter
	logouts          [bearerProblemCount]*metrics.Counter
	storeUnavailable *metrics.Counter
}

func newSubsystemMetrics(set *metrics.Set, s *subsystem) *subsystemMetrics {
	m := &subsystemMetrics{set: set, subsystem: s.name}
	label := `subsystem="` + s.name + `"`
	m.duration = set.NewPrometheusHistogramExt(`northd_request_duration_seconds{`+label+`}`, requestDurationBuckets)
	m.logins = set.NewCounter(`northd_logins_total{` + label + `}`)
	for p := problemEmptyBody; p < problemCount; p++ {
		m.loginRejections[p] = set.NewCounter(`northd_login_rejections_total{` + label + `,reason="` + problemReasons[p] + `"}`)
	}
	for o := authWrongPassword; o < authOutcomeCount; o++ {
		m.loginFailures[o] = set.NewCounter(`northd_login_failures_total{` + label + `,reason="` + authOutcomeReasons[o] + `"}`)
	}
	for p := bearerOK; p < bearerProblemCount; p++ {
		m.verifications[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="verify",result="` + bearerReasons[p] + `"}`)
		m.logouts[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="logout",result="` + bearerReasons[p] + `"}`)
	}
	m.storeUnavailable = set.NewCounter(`northd_store_unavailable_total{` + label + `}`)
	if s.registry != nil {
		// With a shared store these are the store's to tell.
		set.NewGauge(`northd_tokens_live{`+label+`}`, func() float64 {
			live, _ := s.registry.tokenCounts(time.Now().UnixNano())
			return float64(live)
		})
		for why := tokenExpired; why < tokenEndCount; why++ {
			set.NewGauge(`northd_tokens_ended_total{`+label+`,why="`+tokenEndNames[why]+`"}`, func() float64 {
				_, ended := s.registry.tokenCounts(time.Now().UnixNano())
				return float64(ended[why])
			})
		}
		set.NewGauge(`northd_registry_north_servers{`+label+`}`, func() float64 { return float64(s.registry.count()) })
		set.NewGauge(`northd_registry_evictions_total{`+label+`}`, func() float64 { return float64(s.registry.evictions()) })
	}
	set.NewGauge(`northd_open_connections{`+label+`}`, func() float64 { return float64(s.openConns.Load()) })
	// Connections refused by the listener got an answer too, so they are
	// requests like any other to whoever counts answers (a load balancer
	// does), under route="refused": 503 over -max-conns, 429 over
	// -max-conns-per-ip. The listener keeps the counts, read at scrape
	// time; both series are there from the start.
	for _, r := range []struct {
		reason refusal
		status string
	}{{refusedMaxConns, "503"}, {refusedPerIP, "429"}} {
		set.NewGauge(`northd_requests_total{`+label+`,route="refused",status="`+r.status+`"}`, func() float64 { return float64(s.refusals(r.reason)) })
	}
	return m
}

// refusals reports how many connections the subsystem's listener refused
// for r.
func (s *subsystem) refusals(r refusal) uint64 { return s.conns.refusals(r) }

// observed wraps h so that each request it answers is counted under rt.
func (s *subsystem) observed(rt route, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		s.metrics.observe(rt, ctx)
	}
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
	c := m.requests[rt][slot].Load()
	if c == nil {
		c = m.requestCounter(rt, slot)
	}
	c.Inc()
	// fasthttp stamps a request's start once it has read it whole, so an
	// unreadable request has no duration.
	if rt != routeUnreadable {
		m.duration.Update(time.Since(ctx.Time()).Seconds())
	}
}

func (m *subsystemMetrics) requestCounter(rt route, slot int) *metrics.Counter {
	status := "other"
	if slot < len(countedStatuses) {
		status = strconv.Itoa(countedStatuses[slot])
	}
	c := m.set.GetOrCreateCounter(`northd_requests_total{subsystem="` + m.subsystem + `",route="` + routeNames[rt] + `",status="` + status + `"}`)
	m.requests[rt][slot].Store(c)
	return c
}
