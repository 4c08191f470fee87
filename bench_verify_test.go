package main

import (
	"net"
	"regexp"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkVerify is GET /north/verify with a live token, through the
// subsystem's handler, as BenchmarkHandler runs the other routes.
func BenchmarkVerify(b *testing.B) {
	s := startSubsystem(b, testConfig(b), nullListener{})
	h := s.server.Handler
	serve := func(raw string) *fasthttp.RequestCtx {
		var req fasthttp.Request
		if err := req.ReadLimitBody(bufioReader(raw), 1<<20); err != nil {
			b.Fatal(err)
		}
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
		h(ctx)
		return ctx
	}
	login := serve(post("/north/login", benchLogin))
	m := regexp.MustCompile(`"token": "([0-9a-f]{32})"`).FindSubmatch(login.Response.Body())
	if m == nil {
		b.Fatalf("login: %d %q", login.Response.StatusCode(), login.Response.Body())
	}
	ctx := serve("GET /north/verify HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + string(m[1]) + "\r\n\r\n")
	if st := ctx.Response.StatusCode(); st != 200 {
		b.Fatalf("verify: %d %q", st, ctx.Response.Body())
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		h(ctx)
	}
	if st := ctx.Response.StatusCode(); st != 200 {
		b.Fatalf("verify: %d %q", st, ctx.Response.Body())
	}
}
