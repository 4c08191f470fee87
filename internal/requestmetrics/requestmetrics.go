// Package requestmetrics counts one subsystem's requests by route and
// status, their durations and its logins, without allocating and without
// the cores contending on one counter.
package requestmetrics

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// MaxRoutes bounds how many routes one Counter tells apart.
const MaxRoutes = 16

// countedStatuses are the statuses northd answers; any other lands in the
// last slot as status="other".
var countedStatuses = [...]int{200, 204, 400, 403, 404, 405, 408, 409, 413, 429, 431, 500, 503}

// durationBuckets reach down to 25µs: a login is answered in
// microseconds, and the default buckets would put every request in one.
var durationBuckets = [...]float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 500e-3, 1, 5}

// Counter is one subsystem's request series in a metrics set.
//
// What every request counts (its route and status, its duration, a login)
// goes into one of shards shards, picked by the connection, each on cache
// lines of its own: requests on different cores then touch different
// memory, where one shared counter's cache line would bounce between the
// cores and one histogram's mutex would queue them. /metrics sums the
// shards; its output is what one counter and one histogram would give.
type Counter struct {
	set        *metrics.Set
	label      string // subsystem="NAME"
	routeNames []string

	shards [shards]shard
	// listed marks the request series already in the set: a series is
	// added at its first request, so /metrics shows only what happened.
	listed [MaxRoutes][len(countedStatuses) + 1]atomic.Bool
}

// New is a Counter of the routes named routeNames (at most MaxRoutes),
// whose series carry label. It adds the duration histogram
// (northd_request_duration_seconds) and the logins (northd_logins_total)
// to set at once; each route and status is added at its first request
// (northd_requests_total).
func New(set *metrics.Set, label string, routeNames []string) *Counter {
	if len(routeNames) > MaxRoutes {
		panic("requestmetrics: more than MaxRoutes routes")
	}
	c := &Counter{set: set, label: label, routeNames: routeNames}
	c.listDuration(`northd_request_duration_seconds`)
	set.NewGauge(`northd_logins_total{`+label+`}`, func() float64 {
		return float64(c.sum(func(sh *shard) uint64 { return sh.logins.Load() }))
	})
	return c
}

// shards spreads per-request counting over this many shards, a power of
// two.
const shards = 32

// shard is one shard of what requests count. Its size is a whole number of
// cache lines, so no two shards share one.
type shard struct {
	requests [MaxRoutes][len(countedStatuses) + 1]atomic.Uint64
	// durations counts requests by the first bucket of durationBuckets
	// they fit; the last slot, those over all.
	durations      [len(durationBuckets) + 1]atomic.Uint64
	durationsNanos atomic.Uint64
	logins         atomic.Uint64
	_              [64 - ((MaxRoutes*(len(countedStatuses)+1)+len(durationBuckets)+1+2)*8)%64]byte
}

// shardOf picks the shard of a request: by its connection, so that one
// connection's requests, served by one goroutine, always count in one.
func (c *Counter) shardOf(ctx *fasthttp.RequestCtx) *shard {
	return &c.shards[ctx.ConnID()&(shards-1)]
}

func (c *Counter) sum(field func(*shard) uint64) uint64 {
	var n uint64
	for i := range c.shards {
		n += field(&c.shards[i])
	}
	return n
}

// Login counts a login answered 200.
func (c *Counter) Login(ctx *fasthttp.RequestCtx) { c.shardOf(ctx).logins.Add(1) }

// Observe counts the request ctx answered under route, and its duration.
func (c *Counter) Observe(route int, ctx *fasthttp.RequestCtx) {
	sh := c.count(route, ctx)
	d := time.Since(ctx.Time())
	b := 0
	for b < len(durationBuckets) && d > durationBounds[b] {
		b++
	}
	sh.durations[b].Add(1)
	sh.durationsNanos.Add(uint64(d))
}

// ObserveUnread counts a request ctx answered under route without a
// duration: fasthttp stamps a request's start once it has read it whole,
// so one it could not read has none.
func (c *Counter) ObserveUnread(route int, ctx *fasthttp.RequestCtx) {
	c.count(route, ctx)
}

func (c *Counter) count(route int, ctx *fasthttp.RequestCtx) *shard {
	status := ctx.Response.StatusCode()
	slot := len(countedStatuses)
	for i, st := range countedStatuses {
		if st == status {
			slot = i
			break
		}
	}
	sh := c.shardOf(ctx)
	sh.requests[route][slot].Add(1)
	if !c.listed[route][slot].Load() {
		c.listRequests(route, slot)
	}
	return sh
}

// durationBounds are durationBuckets as durations, so that a request's is
// compared without a float conversion.
var durationBounds = func() (d [len(durationBuckets)]time.Duration) {
	for i, s := range durationBuckets {
		d[i] = time.Duration(s * float64(time.Second))
	}
	return d
}()

// listRequests adds the series of one route and status to the set, once.
func (c *Counter) listRequests(route, slot int) {
	if c.listed[route][slot].Swap(true) {
		return
	}
	status := "other"
	if slot < len(countedStatuses) {
		status = strconv.Itoa(countedStatuses[slot])
	}
	c.set.GetOrCreateGauge(`northd_requests_total{`+c.label+`,route="`+c.routeNames[route]+`",status="`+status+`"}`, func() float64 {
		return float64(c.sum(func(sh *shard) uint64 { return sh.requests[route][slot].Load() }))
	})
}

// listDuration adds the duration histogram's series, as a Prometheus
// histogram writes them: cumulative _bucket{le=…}, _sum and _count.
func (c *Counter) listDuration(name string) {
	for b, ub := range durationBuckets {
		c.set.NewGauge(fmt.Sprintf("%s_bucket{%s,le=\"%v\"}", name, c.label, ub), func() float64 {
			var n uint64
			for i := 0; i <= b; i++ {
				n += c.sum(func(sh *shard) uint64 { return sh.durations[i].Load() })
			}
			return float64(n)
		})
	}
	count := func() float64 {
		var n uint64
		for i := range len(durationBuckets) + 1 {
			n += c.sum(func(sh *shard) uint64 { return sh.durations[i].Load() })
		}
		return float64(n)
	}
	c.set.NewGauge(name+`_bucket{`+c.label+`,le="+Inf"}`, count)
	c.set.NewGauge(name+`_sum{`+c.label+`}`, func() float64 {
		return time.Duration(c.sum(func(sh *shard) uint64 { return sh.durationsNanos.Load() })).Seconds()
	})
	c.set.NewGauge(name+`_count{`+c.label+`}`, count)
}
