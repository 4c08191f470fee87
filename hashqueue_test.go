package main

import (
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

// A login that finds the password checks' queue full is answered 503 code
// 4 with Retry-After: 1 at once; the logins that waited when the checker
// died are answered 503 code 4 too. None of them is charged a failure:
// their reservations are released.
func TestHashQueueFullAnswers503(t *testing.T) {
	// Limits high enough for every login below to reach the checker.
	s := authSubsystem(t, "-max-login-failures", "1000", "-max-user-login-failures", "1000")
	h := s.routes()
	// Stopped, the child answers nothing: every slot stays taken.
	pid := s.auth.hashing.pid()
	stopChild(t, pid)
	slots := len(s.auth.hashing.slots)
	queued := make(chan *fasthttp.RequestCtx, slots)
	for range slots {
		ctx := handlerCtx(t, post("/north/login", `{"username":"alice","password":"a guess"}`))
		go func() {
			h(ctx)
			queued <- ctx
		}()
	}
	testdeps.WaitFor(t, "every slot of the checker taken", func() bool { return len(s.auth.hashing.free) == 0 })

	ctx := handlerCtx(t, post("/north/login", `{"username":"alice","password":"one more guess"}`))
	h(ctx)
	const busy = `{"code": 4, "token": "", "description": "too many logins are waiting for a password check; retry after the Retry-After seconds"}`
	if ctx.Response.StatusCode() != 503 || string(ctx.Response.Body()) != busy || string(ctx.Response.Header.Peek("Retry-After")) != "1" ||
		string(ctx.Response.Header.ContentType()) != "application/json; charset=utf-8" {
		t.Errorf("with the queue full: %d Retry-After %q %q, want 503 Retry-After 1 %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body(), busy)
	}
	if !hasMetricLine(metricsText(s), `northd_login_failures_total{subsystem="test",reason="hash_queue_full"} 1`) {
		t.Errorf("metrics:\n%s", metricsText(s))
	}

	// The child dies: the waiting logins are answered that the checker
	// is restarting.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	const down = `{"code": 4, "token": "", "description": "the password checker is restarting; retry after the Retry-After seconds"}`
	for range slots {
		ctx := <-queued
		if ctx.Response.StatusCode() != 503 || string(ctx.Response.Body()) != down || string(ctx.Response.Header.Peek("Retry-After")) != "1" {
			t.Fatalf("a login waiting when the checker died: %d Retry-After %q %q, want 503 Retry-After 1 %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body(), down)
		}
	}
	if a, u := s.auth.limits.byAddr.count.Load(), s.auth.limits.byUser.count.Load(); a != 0 || u != 0 {
		t.Errorf("%d address and %d username buckets after %d unchecked logins, want none", a, u, slots+1)
	}
}
