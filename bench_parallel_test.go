package main

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkParallel runs a route's handler on every CPU at once (run it
// with -cpu 1,2,…): throughput that does not grow with the CPUs means
// shared state, a lock or a contended cache line, on the request path.
// Each goroutine logs in as a north server of its own, as real ones do.
func BenchmarkParallel(b *testing.B) {
	for _, br := range []struct{ name, raw, body string }{
		{"Home", "GET / HTTP/1.1\r\nHost: bench\r\n\r\n", ""},
		{"Login", "", `{"username": "north-7", "password": "s3cret!", "ip": "192.0.2.`},
	} {
		b.Run(br.name, func(b *testing.B) {
			s := startSubsystem(b, testConfig(b), nullListener{})
			h := s.server.Handler
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				raw, body := br.raw, []byte(nil)
				if br.body != "" {
					body = []byte(br.body + strconv.Itoa(int(next.Add(1))%250) + `"}`)
					raw = post("/north/login", string(body))
				}
				ctx := handlerCtx(b, raw)
				for pb.Next() {
					if body != nil {
						ctx.Request.SetBody(body) // the login handler zeroes it
					}
					ctx.Response.Reset()
					h(ctx)
				}
				if ctx.Response.StatusCode() != 200 {
					b.Errorf("status %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			})
		})
	}
}
