package main

// loadtest events' publisher, open-loop: batch k is due at a fixed time
// (k × batch ÷ rate after the start) whatever became of the batches before
// it, and is sent on one of -publishers keep-alive connections as soon as
// one is free. A publish slower than the interval then delays the batches
// behind it (they are counted late) instead of lowering the rate, as the
// closed loop it replaces did (post, wait for the answer, sleep): that
// published 61% of 10,000 events/s.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// eventPublisher sends events first to first+n-1 in one request, each
// carrying the time the request is sent; an error ends the run.
type eventPublisher interface {
	publish(first, n int) error
}

// publishPlan is what to publish: total events in batches of batch, batch
// k due k × batch ÷ rate seconds after the start; rate 0: all due at once,
// sent as fast as the connections take them.
type publishPlan struct {
	total, batch, rate int
	// limit: no batch is sent this long after the start or later (0:
	// none); what was due and not sent by then is not published.
	limit time.Duration
}

func (p publishPlan) batches() int            { return (p.total + p.batch - 1) / p.batch }
func (p publishPlan) size(k int) int          { return min(p.batch, p.total-k*p.batch) }
func (p publishPlan) first(k int) int         { return k * p.batch }
func (p publishPlan) paced() bool             { return p.rate > 0 }
func (p publishPlan) interval() time.Duration { return p.due(1) }

// due is when batch k is due, after the start: computed from k, not added
// up batch after batch, so that no rounding accumulates.
func (p publishPlan) due(k int) time.Duration {
	if p.rate == 0 {
		return 0
	}
	return time.Duration(int64(k) * int64(p.batch) * int64(time.Second) / int64(p.rate))
}

// publishOutcome is what the publisher did.
type publishOutcome struct {
	published int     // events the server took
	late      int     // batches sent more than one interval after they were due
	seconds   float64 // from the start to the last answer
}

// publishClock is the time the publisher keeps: the real one, or a test's.
type publishClock interface {
	now() time.Time
	sleepUntil(t time.Time)
}

// realClock sleeps on a timerfd: time.Sleep can wake up to a millisecond
// late on Linux, a whole interval at 10,000 events/s in batches of 10.
type realClock struct{ sleeper *preciseSleeper }

func (c realClock) now() time.Time         { return time.Now() }
func (c realClock) sleepUntil(t time.Time) { c.sleeper.sleep(time.Until(t)) }

// publishOpenLoop publishes plan through the workers, one batch in flight
// on each at most, until every batch is sent, plan.limit passes, a publish
// fails (its error is returned) or ctx ends.
func publishOpenLoop(ctx context.Context, plan publishPlan, workers []eventPublisher, clk publishClock) (publishOutcome, error) {
	type job struct {
		k   int
		due time.Time
	}
	jobs := make(chan job)
	failed := make(chan struct{})
	var (
		mu         sync.Mutex
		out        publishOutcome
		firstErr   error
		lastAnswer time.Time
		wg         sync.WaitGroup
	)
	start := clk.now()
	lastAnswer = start
	for _, p := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				select {
				case <-failed:
					continue // the run has failed: publish no more
				default:
				}
				sent := clk.now()
				if plan.limit > 0 && sent.Sub(start) >= plan.limit {
					continue // its time is over: not published
				}
				n := plan.size(j.k)
				err := p.publish(plan.first(j.k), n)
				answered := clk.now()
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
					close(failed)
				case err == nil:
					out.published += n
					if plan.paced() && sent.Sub(j.due) > plan.interval() {
						out.late++
					}
					if answered.After(lastAnswer) {
						lastAnswer = answered
					}
				}
				mu.Unlock()
			}
		}()
	}
schedule:
	for k := range plan.batches() {
		due := start.Add(plan.due(k))
		if plan.limit > 0 && plan.due(k) >= plan.limit {
			break
		}
		clk.sleepUntil(due)
		select {
		case jobs <- job{k, due}:
		case <-failed:
			break schedule
		case <-ctx.Done():
			break schedule
		}
	}
	close(jobs)
	wg.Wait()
	out.seconds = lastAnswer.Sub(start).Seconds()
	return out, firstErr
}

// appendEventData appends the data of event n sent at t (Unix ns), the
// same for every peer: {"t":T,"n":N}. The streams read t back.
func appendEventData(b []byte, t int64, n int) []byte {
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

// httpPublisher is one publishing connection's worth of state: its
// request, response and body buffer, reused batch after batch, so that a
// batch costs the appending of its events and no allocation.
type httpPublisher struct {
	client     *fasthttp.HostClient // shared by the workers, a connection each
	req        *fasthttp.Request
	resp       *fasthttp.Response
	body       []byte
	appendBody func(b []byte, first, n int, t int64) []byte
	check      func(status int, body []byte, n int) error
}

// newPublishClient is the publishers' client to addr (host:port), a
// keep-alive connection for each of conns workers.
func newPublishClient(addr string, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                     addr,
		MaxConns:                 conns,
		MaxIdleConnDuration:      90 * time.Second,
		ReadTimeout:              time.Minute,
		WriteTimeout:             time.Minute,
		MaxConnWaitTimeout:       time.Minute,
		NoDefaultUserAgentHeader: true,
		MaxResponseBodySize:      1 << 20,
		// A publish is never sent twice: the events would be.
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
}

// newHTTPPublisher makes a worker that POSTs its batches to uri with
// headers (name, value pairs).
func newHTTPPublisher(client *fasthttp.HostClient, uri string, headers []string, appendBody func([]byte, int, int, int64) []byte, check func(int, []byte, int) error) *httpPublisher {
	req := fasthttp.AcquireRequest()
	req.Header.SetMethod("POST")
	req.SetRequestURI(uri)
	req.Header.SetContentType("application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return &httpPublisher{client: client, req: req, resp: fasthttp.AcquireResponse(), body: make([]byte, 0, 64<<10), appendBody: appendBody, check: check}
}

func (p *httpPublisher) publish(first, n int) error {
	// The time is taken as the request goes: a batch sent late carries
	// its sending time, so its events' latency is the server's, not the
	// queue's behind the publishers (which publishes_late counts).
	p.body = p.appendBody(p.body[:0], first, n, time.Now().UnixNano())
	p.req.SetBody(p.body)
	if err := p.client.Do(p.req, p.resp); err != nil {
		return fmt.Errorf("publish: %v", err)
	}
	return p.check(p.resp.StatusCode(), p.resp.Body(), n)
}
