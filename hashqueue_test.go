package main

import (
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

// A login that finds the password checks' queue full is answered 503 code
// 4 with Retry-After: 1 at once; the logins that waited when the checker
// died are answered 503 code 4 too. internal/auth checks that none of them
// is charged a failure.
func TestHashQueueFullAnswers503(t *testing.T) {
	// Limits high enough for every login below to reach the checker.
	logs := new(testdeps.SyncBuffer)
	s := authSubsystemWith(t, logs, "-max-login-failures", "1000", "-max-user-login-failures", "1000")
	h := s.routes()
	// Stopped, the child answers nothing: every slot stays taken.
	pid := checkerPIDs(logs)[0]
	stopChild(t, pid)
	slots := (1 + 4) * runtime.GOMAXPROCS(0) // 4 waiting per processor of the child, and one running
	queued := make(chan *fasthttp.RequestCtx, slots)
	for range slots {
		ctx := handlerCtx(t, post("/north/login", `{"username":"alice","password":"a guess"}`))
		go func() {
			h(ctx)
			queued <- ctx
		}()
	}
	testdeps.WaitFor(t, "every slot of the checker taken", func() bool {
		return hasMetricLine(metricsText(s), "northd_password_checks_waiting "+strconv.Itoa(slots))
	})

	ctx := handlerCtx(t, post("/north/login", `{"username":"alice","password":"one more guess"}`))
	h(ctx)
	if ctx.Response.StatusCode() != 503 || string(ctx.Response.Body()) != hashBusyBody503 || string(ctx.Response.Header.Peek("Retry-After")) != "1" ||
		string(ctx.Response.Header.ContentType()) != "application/json; charset=utf-8" {
		t.Errorf("with the queue full: %d Retry-After %q %q, want 503 Retry-After 1 %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body(), hashBusyBody503)
	}
	if !hasMetricLine(metricsText(s), `northd_login_failures_total{subsystem="test",reason="hash_queue_full"} 1`) {
		t.Errorf("metrics:\n%s", metricsText(s))
	}

	// The child dies: the waiting logins are answered that the checker
	// is restarting.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range slots {
		ctx := <-queued
		if ctx.Response.StatusCode() != 503 || string(ctx.Response.Body()) != checkerDownBody503 || string(ctx.Response.Header.Peek("Retry-After")) != "1" {
			t.Fatalf("a login waiting when the checker died: %d Retry-After %q %q, want 503 Retry-After 1 %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body(), checkerDownBody503)
		}
	}
}
