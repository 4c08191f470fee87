package main

import (
	"testing"
)

// A login that finds the password checks' queue full is answered 503 code
// 4 with Retry-After: 1 at once, and is not charged as a failure.
func TestHashQueueFullAnswers503(t *testing.T) {
	s := authSubsystem(t)
	// No workers and room for one: the first login waits in the queue,
	// the second finds it full.
	pool := newHashPool(0, 1, s.auth.hashDuration)
	s.auth.hashing = pool
	h := s.routes()
	queued := make(chan int)
	first := handlerCtx(t, post("/north/login", `{"username":"alice","password":"first guess"}`))
	go func() {
		h(first)
		queued <- first.Response.StatusCode()
	}()
	waitFor(t, "the first login to wait in the queue", func() bool { return len(pool.jobs) == 1 })

	ctx := handlerCtx(t, post("/north/login", `{"username":"alice","password":"second guess"}`))
	h(ctx)
	const want = `{"code": 4, "token": "", "description": "too many logins are waiting for a password check; retry after the Retry-After seconds"}`
	if ctx.Response.StatusCode() != 503 || string(ctx.Response.Body()) != want || string(ctx.Response.Header.Peek("Retry-After")) != "1" ||
		string(ctx.Response.Header.ContentType()) != "application/json; charset=utf-8" {
		t.Errorf("with the queue full: %d Retry-After %q %q, want 503 Retry-After 1 %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body(), want)
	}
	if !hasMetricLine(metricsText(s), `northd_login_failures_total{subsystem="test",reason="hash_queue_full"} 1`) {
		t.Errorf("metrics:\n%s", metricsText(s))
	}

	// Stopped, the pool answers the queued login busy too; neither login
	// was charged a failure.
	pool.stop()
	if st := <-queued; st != 503 {
		t.Errorf("the queued login, once the pool stopped: %d, want 503", st)
	}
	if a, u := s.auth.limits.byAddr.count.Load(), s.auth.limits.byUser.count.Load(); a != 0 || u != 0 {
		t.Errorf("%d address and %d username buckets after two unchecked logins, want none", a, u)
	}
}
