package main

import (
	"testing"

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
