// Package bench holds northd's end-to-end Go benchmarks: the northd
// binary, built once by TestMain and run as its own process on a loopback
// port, driven through real TCP connections by fasthttp's HostClient (one
// request in flight per connection) and PipelineClient (many in flight per
// connection), from parallel goroutines. Each reports req/s besides ns/op
// and allocs/op (of the client only: the server is another process).
//
//	make bench-e2e                        # -benchmem -count $(BENCHCOUNT) > bench/e2e.txt
//	benchstat old.txt bench/e2e.txt       # compare two runs
//
// The rest of bench/ (wrk scripts, peers, make compare, make bench-conns)
// is described in bench/README.md.
package bench

import (
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

// A workload is one route: how to fill in the i-th request of a
// goroutine, and the status every response must have.
type workload struct {
	name   string
	status int
	fill   func(req *fasthttp.Request, body []byte, i uint64) []byte
}

const loginBody = `{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}`

var workloads = []workload{
	{"Home", 200, func(req *fasthttp.Request, body []byte, _ uint64) []byte {
		req.SetRequestURI("/")
		return body
	}},
	{"Login", 200, func(req *fasthttp.Request, body []byte, _ uint64) []byte {
		req.Header.SetMethod("POST")
		req.SetRequestURI("/north/login")
		req.Header.SetContentType("application/json")
		req.SetBodyString(loginBody)
		return body
	}},
	// LoginVaried gives every request another username and ip, from
	// 4096 north servers, as bench/wrk/login-varied.lua does.
	{"LoginVaried", 200, func(req *fasthttp.Request, body []byte, i uint64) []byte {
		req.Header.SetMethod("POST")
		req.SetRequestURI("/north/login")
		req.Header.SetContentType("application/json")
		k := i % 4096
		body = append(body[:0], `{"username": "north-`...)
		body = strconv.AppendUint(body, k, 10)
		body = append(body, `", "password": "secret", "ip": "10.0.`...)
		body = strconv.AppendUint(body, k/256, 10)
		body = append(body, '.')
		body = strconv.AppendUint(body, k%256, 10)
		body = append(body, `"}`...)
		req.SetBody(body)
		return body
	}},
	{"NotFound", 404, func(req *fasthttp.Request, body []byte, _ uint64) []byte {
		req.SetRequestURI("/favicon.ico")
		return body
	}},
}

// doer is what HostClient and PipelineClient have in common.
type doer interface {
	Do(req *fasthttp.Request, resp *fasthttp.Response) error
}

// drive sends b.N requests of w from parallel goroutines through c and
// reports requests per second.
func drive(b *testing.B, c doer, w workload) {
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetHost("bench")
		var body []byte
		i := seq.Add(1 << 20) // each goroutine its own stretch of the list
		body = w.fill(req, body, i)
		for pb.Next() {
			if w.name == "LoginVaried" {
				i++
				body = w.fill(req, body, i)
			}
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != w.status {
				b.Errorf("status %d, want %d: %s", resp.StatusCode(), w.status, resp.Body())
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkE2E drives northd (northd_test.go) over loopback TCP:
//   - HostClient: 64 goroutines, one request in flight per connection at
//     a time, as wrk -c64 does;
//   - Pipeline: the same goroutines sharing 4 pipelined connections.
func BenchmarkE2E(b *testing.B) {
	addr := startNorthd(b).Listen[0]
	for _, w := range workloads {
		b.Run("HostClient/"+w.name, func(b *testing.B) {
			c := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
			defer c.CloseIdleConnections()
			b.SetParallelism(parallelism())
			drive(b, c, w)
		})
	}
	for _, w := range workloads {
		b.Run("Pipeline/"+w.name, func(b *testing.B) {
			c := &fasthttp.PipelineClient{Addr: addr, MaxConns: 4, MaxPendingRequests: 4096}
			b.SetParallelism(parallelism())
			drive(b, c, w)
		})
	}
}

// parallelism makes RunParallel start 64 goroutines in all, whatever
// GOMAXPROCS is.
func parallelism() int {
	p := 64 / runtime.GOMAXPROCS(0)
	return max(p, 1)
}

// checkAnswer checks resp, the answer to req, against docs/openapi.yaml
// (testdeps.CheckAnswer): the workloads' answers are the document's.
func checkAnswer(t *testing.T, req *fasthttp.Request, resp *fasthttp.Response) {
	t.Helper()
	reqHeader, header := http.Header{}, http.Header{}
	req.Header.VisitAll(func(k, v []byte) { reqHeader.Add(string(k), string(v)) })
	resp.Header.VisitAll(func(k, v []byte) { header.Add(string(k), string(v)) })
	testdeps.CheckAnswer(t, string(req.Header.Method()), string(req.RequestURI()), reqHeader, resp.StatusCode(), header, resp.Body())
}

// TestE2EHarness checks, in well under a second, that every workload of
// BenchmarkE2E gets the status it expects through both clients, so that
// make test keeps the benchmarks runnable without running them.
func TestE2EHarness(t *testing.T) {
	addr := startNorthd(t).Listen[0]
	clients := map[string]doer{
		"HostClient": &fasthttp.HostClient{Addr: addr},
		"Pipeline":   &fasthttp.PipelineClient{Addr: addr},
	}
	for name, c := range clients {
		for _, w := range workloads {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.Header.SetHost("bench")
			var body []byte
			for i := range uint64(3) {
				body = w.fill(req, body, i)
				if err := c.Do(req, resp); err != nil {
					t.Fatalf("%s %s: %v", name, w.name, err)
				}
				if resp.StatusCode() != w.status {
					t.Errorf("%s %s: status %d, want %d: %s", name, w.name, resp.StatusCode(), w.status, resp.Body())
				}
				checkAnswer(t, req, resp)
			}
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
	}
}
