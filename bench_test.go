package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

// Benchmarks of every route, each two ways:
//   - Handler: the subsystem's handler on a prepared RequestCtx, the cost
//     northd adds on top of fasthttp;
//   - Conn: the whole server on one keep-alive connection fed b.N
//     requests, including fasthttp's parsing and writing.
// Every one must report 0 allocs/op (make bench).

var benchRequests = []struct {
	name, raw string
	body      string // put back before each request: the login handler zeroes it
	status    int    // of every answer
}{
	{"Home", "GET / HTTP/1.1\r\nHost: bench\r\n\r\n", "", 200},
	{"Login", post("/north/login", benchLogin), benchLogin, 200},
	{"LoginInvalid", post("/north/login", benchLoginInvalid), benchLoginInvalid, 400},
	{"NotFound", "GET /favicon.ico HTTP/1.1\r\nHost: bench\r\n\r\n", "", 404},
	{"Healthz", "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n", "", 200},
	{"Readyz", "GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n", "", 200},
}

const (
	benchLogin        = `{"username": "north-7", "password": "s3cret!", "ip": "192.0.2.7"}`
	benchLoginInvalid = `{"username": "north-7", "password": `
)

func BenchmarkHandler(b *testing.B) {
	for _, br := range benchRequests {
		b.Run(br.name, func(b *testing.B) {
			s := startSubsystem(b, testConfig(b), nullListener{})
			var req fasthttp.Request
			if err := req.ReadLimitBody(bufioReader(br.raw), 1<<20); err != nil {
				b.Fatal(err)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			h := s.server.Handler
			serve := func() {
				if br.body != "" {
					ctx.Request.SetBodyString(br.body)
				}
				ctx.Response.Reset()
				h(&ctx)
			}
			serve() // warm the pools
			if st := ctx.Response.StatusCode(); st != br.status {
				b.Fatalf("status %d, want %d; body %q", st, br.status, ctx.Response.Body())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve()
			}
			b.StopTimer()
			if st := ctx.Response.StatusCode(); st != br.status {
				b.Fatalf("status %d, want %d; body %q", st, br.status, ctx.Response.Body())
			}
		})
	}
}

func BenchmarkConn(b *testing.B) {
	for _, br := range benchRequests {
		b.Run(br.name, func(b *testing.B) {
			s := startSubsystem(b, testConfig(b), nullListener{})
			status := []byte("HTTP/1.1 " + strconv.Itoa(br.status) + " ")
			warm := &replayConn{request: []byte(br.raw), left: 100, status: status}
			if err := s.server.ServeConn(warm); err != nil {
				b.Fatal(err)
			}
			warm.check(b, 100)
			c := &replayConn{request: []byte(br.raw), left: b.N, status: status}
			b.ReportAllocs()
			b.ResetTimer()
			if err := s.server.ServeConn(c); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.check(b, b.N)
		})
	}
}

// replayConn hands the server the same request left times, then EOF, and
// discards what it writes, after checking that it starts with status.
type replayConn struct {
	request []byte
	off     int
	left    int

	status  []byte // the start of every answer: "HTTP/1.1 200 "
	answers int    // writes, one per answer
	wrong   []byte // the start of the first write not starting with status
}

// check fails the benchmark unless the server wrote n answers, each
// starting with the status wanted. fasthttp flushes each answer in one
// write, since no pipelined request is waiting behind it.
func (c *replayConn) check(b *testing.B, n int) {
	b.Helper()
	if c.wrong != nil || c.answers != n {
		b.Fatalf("%d answers, want %d starting with %q; first wrong one starts %q", c.answers, n, c.status, c.wrong)
	}
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.off == len(c.request) {
		if c.left <= 1 {
			return 0, io.EOF
		}
		c.left--
		c.off = 0
	}
	n := copy(p, c.request[c.off:])
	c.off += n
	return n, nil
}

func (c *replayConn) Write(p []byte) (int, error) {
	c.answers++
	if !bytes.HasPrefix(p, c.status) && c.wrong == nil {
		c.wrong = append([]byte(nil), p[:min(len(p), 64)]...)
	}
	return len(p), nil
}

func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return benchAddr }
func (c *replayConn) RemoteAddr() net.Addr             { return benchAddr }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

var benchAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// nullListener is a listener for subsystems driven without one: Accept
// fails at once, so Serve returns.
type nullListener struct{}

func (nullListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (nullListener) Close() error              { return nil }
func (nullListener) Addr() net.Addr            { return benchAddr }

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// BenchmarkToken compares the token sources northd could use.
func BenchmarkToken(b *testing.B) {
	b.Run("ChaCha8Pool", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				newToken()
			}
		})
	})
	b.Run("UUIDNew", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				uuid.New()
			}
		})
	})
}

// BenchmarkAuth measures what credentials and tokens add to a request, on
// the handler: a login answered from the credential cache against an
// open-mode login, and a verification against the home page.
func BenchmarkAuth(b *testing.B) {
	body := []byte(`{"username": "alice", "password": "secret", "ip": "192.0.2.7"}`)
	users, open := authSubsystem(b), startSubsystem(b, testConfig(b), nullListener{})
	login := handlerCtx(b, post("/north/login", string(body)))
	users.routes()(login)
	token, ok := testdeps.TokenIn(string(login.Response.Body()))
	if !ok {
		b.Fatalf("login: %q", login.Response.Body())
	}
	verify := handlerCtx(b, "GET /north/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\n\r\n")
	home := handlerCtx(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	otherIP := []byte(`{"username": "alice", "password": "secret", "ip": "192.0.2.8"}`)
	for _, bc := range []struct {
		name string
		h    fasthttp.RequestHandler
		ctx  *fasthttp.RequestCtx
		body []byte
	}{
		{"LoginOpen", open.routes(), handlerCtx(b, post("/north/login", string(otherIP))), otherIP},
		{"LoginCached", users.routes(), handlerCtx(b, post("/north/login", string(otherIP))), otherIP},
		{"Verify", users.routes(), verify, nil},
		{"Home", users.routes(), home, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.body != nil {
					bc.ctx.Request.SetBody(bc.body) // the login handler zeroes it
				}
				bc.ctx.Response.Reset()
				bc.h(bc.ctx)
			}
			if bc.ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d %q", bc.ctx.Response.StatusCode(), bc.ctx.Response.Body())
			}
		})
	}
}

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
