package main

import (
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

// The tests named *Allocat* hold northd to 0 allocations per request.
// Under the race detector they run, with their answers checked, and then
// skip saying that they did not count; make test runs them again without
// it: go test -count=1 -run 'Allocat' .

// TestRouteAllocations runs the subsystem's handler on a prepared request
// for each route, as BenchmarkHandler does.
func TestRouteAllocations(t *testing.T) {
	const login = `{"username": "north-7", "password": "s3cret!", "ip": "192.0.2.7"}`
	tests := []struct {
		name   string
		raw    string
		body   string // put back before each run: the login handler zeroes it
		status int
		allocs float64
	}{
		{"GET /", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", 200, 0},
		{"HEAD /", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "", 200, 0},
		{"POST /", post("/", "anything"), "anything", 200, 0},
		{"login", post("/north/login", login), login, 200, 0},
		{"login without ip", post("/north/login", `{"username": "north-7", "password": "s3cret!"}`), `{"username": "north-7", "password": "s3cret!"}`, 200, 0},
		{"login bad JSON", post("/north/login", `{"username": "north-7", "password": `), `{"username": "north-7", "password": `, 400, 0},
		{"404", "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", "", 404, 0},
		// routes.go answers 405 and OPTIONS from Allow headers built
		// once; fasthttp/router would build each with strings.Join.
		{"405", "GET /north/login HTTP/1.1\r\nHost: x\r\n\r\n", "", 405, 0},
		{"OPTIONS", "OPTIONS /north/login HTTP/1.1\r\nHost: x\r\n\r\n", "", 204, 0},
		{"healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "", 200, 0},
		{"readyz", "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", "", 200, 0},
	}
	s := startSubsystem(t, testConfig(t), nullListener{})
	h := s.server.Handler
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := handlerCtx(t, tt.raw)
			serve := func() {
				if tt.body != "" {
					ctx.Request.SetBodyString(tt.body)
				}
				ctx.Response.Reset()
				h(ctx)
				if st := ctx.Response.StatusCode(); st != tt.status {
					t.Fatalf("status %d, want %d; body %q", st, tt.status, ctx.Response.Body())
				}
			}
			serve() // the first request of a route creates its counter
			testdeps.WantAllocs(t, tt.name, tt.allocs, serve)
		})
	}
}

func TestNewTokenAllocations(t *testing.T) {
	newToken() // the pool's first generator
	testdeps.WantAllocs(t, "newToken", 0, func() { newToken() })
}

// authSubsystem is a subsystem checking credentials against a users file
// with alice:secret, driven without a listener.
func authSubsystem(t testing.TB, args ...string) *subsystem {
	t.Helper()
	return authSubsystemWith(t, io.Discard, args...)
}

// authSubsystemWith is authSubsystem logging to logs.
func authSubsystemWith(t testing.TB, logs io.Writer, args ...string) *subsystem {
	t.Helper()
	cfg := testConfig(t, append([]string{"-users", testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n")}, args...)...)
	log := newLogger(logs, "info", "text")
	set := metrics.NewSet()
	authn, err := newAuthenticator(cfg, set, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(authn.Stop)
	return newSubsystem(t.Context(), common{cfg: cfg, draining: new(atomic.Bool), auth: authn, set: set, log: log}, "test", nullListener{})
}

// handlerCtx is a RequestCtx holding the request raw, as fasthttp would
// hand it to the handler.
func handlerCtx(t testing.TB, raw string) *fasthttp.RequestCtx {
	t.Helper()
	var req fasthttp.Request
	if err := req.ReadLimitBody(bufioReader(raw), 1<<20); err != nil {
		t.Fatal(err)
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}

// A login served from the credential cache, and a verification, allocate
// nothing.
func TestAuthHotPathsAllocateNothing(t *testing.T) {
	s := authSubsystem(t)
	h := s.routes()
	body := []byte(`{"username": "alice", "password": "secret", "ip": "192.0.2.7"}`)
	login := handlerCtx(t, post("/north/login", string(body)))
	h(login) // verifies the password once, filling the cache
	token, ok := testdeps.TokenIn(string(login.Response.Body()))
	if login.Response.StatusCode() != 200 || !ok {
		t.Fatalf("login: %d %q", login.Response.StatusCode(), login.Response.Body())
	}
	verify := handlerCtx(t, "GET /north/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\n\r\n")
	h(verify)
	if verify.Response.StatusCode() != 200 {
		t.Fatalf("verify: %d %q", verify.Response.StatusCode(), verify.Response.Body())
	}
	// The login replaces the token verify asks about; a login from
	// another ip keeps it.
	otherIP := []byte(`{"username": "alice", "password": "secret", "ip": "192.0.2.8"}`)
	tests := []struct {
		name string
		ctx  *fasthttp.RequestCtx
		body []byte // put back before each run: the login handler zeroes it
	}{
		{"cached login", login, otherIP},
		{"verify", verify, nil},
	}
	for _, tt := range tests {
		testdeps.WantAllocs(t, tt.name, 0, func() {
			if tt.body != nil {
				tt.ctx.Request.SetBody(tt.body)
			}
			tt.ctx.Response.Reset()
			h(tt.ctx)
			if tt.ctx.Response.StatusCode() != 200 {
				t.Fatalf("%s: %d %q", tt.name, tt.ctx.Response.StatusCode(), tt.ctx.Response.Body())
			}
		})
	}
	if m := metricsText(s); !hasMetricLine(m, "northd_auth_cache_misses_total 1") {
		t.Errorf("want 1 cache miss: every login after the first is a hit; metrics:\n%s", m)
	}
}

// The login handler zeroes the request body, which holds the password,
// before fasthttp reuses its memory.
func TestLoginZeroesTheBody(t *testing.T) {
	for _, s := range []*subsystem{authSubsystem(t), startSubsystem(t, testConfig(t), nullListener{})} {
		for _, body := range []string{`{"username": "alice", "password": "secret"}`, `{"username": "alice", "password": "secret"`} {
			ctx := handlerCtx(t, post("/north/login", body))
			s.routes()(ctx)
			for _, c := range ctx.Request.Body() {
				if c != 0 {
					t.Fatalf("after %q (status %d) the body holds %q", body, ctx.Response.StatusCode(), ctx.Request.Body())
				}
			}
		}
	}
}
