package main

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
)

// Benchmarks of every route, each two ways:
//   - Handler: the subsystem's handler on a prepared RequestCtx, the cost
//     northd adds on top of fasthttp;
//   - Conn: the whole server on one keep-alive connection fed b.N
//     requests, including fasthttp's parsing and writing.
// Every one must report 0 allocs/op (make bench).

var benchRequests = []struct{ name, raw string }{
	{"Home", "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"},
	{"Login", post("/north/login", `{"username": "north-7", "password": "s3cret!", "ip": "192.0.2.7"}`)},
	{"LoginInvalid", post("/north/login", `{"username": "north-7", "password": `)},
	{"NotFound", "GET /favicon.ico HTTP/1.1\r\nHost: bench\r\n\r\n"},
	{"Healthz", "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"},
	{"Readyz", "GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n"},
}

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
			h(&ctx) // warm the pools
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ctx.Response.Reset()
				h(&ctx)
			}
			if ctx.Response.StatusCode() >= 500 {
				b.Fatalf("status %d", ctx.Response.StatusCode())
			}
		})
	}
}

func BenchmarkConn(b *testing.B) {
	for _, br := range benchRequests {
		b.Run(br.name, func(b *testing.B) {
			s := startSubsystem(b, testConfig(b), nullListener{})
			warm := &replayConn{request: []byte(br.raw), left: 100}
			if err := s.server.ServeConn(warm); err != nil {
				b.Fatal(err)
			}
			c := &replayConn{request: []byte(br.raw), left: b.N}
			b.ReportAllocs()
			b.ResetTimer()
			if err := s.server.ServeConn(c); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// replayConn hands the server the same request left times, then EOF, and
// discards what it writes.
type replayConn struct {
	request []byte
	off     int
	left    int
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

func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
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
