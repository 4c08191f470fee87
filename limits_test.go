package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/config"
	"northd/internal/netx"
	"northd/internal/testdeps"
)

// metricsText is what the subsystem's metrics set exposes.
func metricsText(s *subsystem) string {
	var b bytes.Buffer
	s.metrics.set.WritePrometheus(&b)
	return b.String()
}

// hasMetricLine reports whether the exposition holds line exactly.
func hasMetricLine(exposition, line string) bool {
	return strings.Contains("\n"+exposition, "\n"+line+"\n")
}

// overloadedAnswer is the listener's refusal over -max-conns, byte for
// byte.
const overloadedAnswer = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: 53\r\n\r\n" +
	"too many connections to this server; try again later\n"

// holdConns opens n connections to addr and has each answer one request,
// so they are surely accepted and served; they stay open until the test
// ends.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := 0; i < n; i++ {
		c := testdeps.DialKept(t, addr)
		c.SetDeadline(time.Now().Add(time.Minute))
		const request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
		io.WriteString(c, request)
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("held connection %d: %v %d", i, err, resp.StatusCode())
		}
		checkAnswer(t, request, &resp)
		held = append(held, c)
	}
	return held
}

// TestOversizeBodyAnswer413WhileClientKeepsSending sends a body over the
// limit over real TCP, all of it before reading, as simple clients do, and
// requires the 413 to arrive intact instead of a connection reset.
func TestOversizeBodyAnswer413WhileClientKeepsSending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The server drains what the client still sends for a while after the
	// 413; long enough here for any machine to send the whole body.
	cfg := testConfig(t)
	cfg.LingerTimeout = 10 * time.Minute
	startSubsystem(t, cfg, ln)
	const size = 16 << 20
	block := strings.Repeat("a", 64<<10)
	for _, tt := range []struct{ header, body string }{
		{"Content-Length: " + strconv.Itoa(size), strings.Repeat(block, size/len(block))},
		{"Transfer-Encoding: chunked", chunked(strings.Split(strings.Repeat(block+"|", size/len(block)), "|")...)},
	} {
		t.Run(tt.header, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Minute)) // only a hang gets near it
			head := "POST /north/login HTTP/1.1\r\nHost: x\r\n" + tt.header + "\r\n\r\n"
			if _, err := io.WriteString(c, head+tt.body); err != nil {
				t.Fatalf("sending the body: %v", err)
			}
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(c)); err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			checkAnswer(t, head, &resp)
			want := failure("request body is larger than 65536 bytes")
			if resp.StatusCode() != 413 || string(resp.Body()) != want || !resp.ConnectionClose() {
				t.Fatalf("got %d %q (close %v), want 413 %q and Connection: close", resp.StatusCode(), resp.Body(), resp.ConnectionClose(), want)
			}
		})
	}
}

// TestMaxConns: a connection over -max-conns is answered 503 with
// Cache-Control: no-store, closed, and counted.
func TestMaxConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSubsystem(t, testConfig(t, "-max-conns", "2"), ln)
	addr := ln.Addr().String()
	held := holdConns(t, addr, 2)

	for i := 0; i < 2; i++ {
		if got := testdeps.ReadRefusal(t, addr); got != overloadedAnswer {
			t.Fatalf("connection %d over -max-conns 2 got\n%q\nwant\n%q", 3+i, got, overloadedAnswer)
		}
	}
	// The refusals are counted as answers, under their own route.
	label := `subsystem="` + s.name + `"`
	testdeps.WaitFor(t, "2 refusals in the metrics", func() bool {
		return hasMetricLine(metricsText(s), `northd_requests_total{`+label+`,route="refused",status="503"} 2`)
	})
	if m := metricsText(s); !hasMetricLine(m, `northd_requests_total{`+label+`,route="refused",status="429"} 0`) || !hasMetricLine(m, `northd_open_connections{`+label+`} 2`) {
		t.Errorf("metrics:\n%s", m)
	}
	// The held connections were not disturbed.
	for i, c := range held {
		const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		io.WriteString(c, request)
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("held connection %d after the refusals: %v %d", i, err, resp.StatusCode())
		}
		checkAnswer(t, request, &resp)
	}
}

// TestRefusalsUnderTLSWriteNothing: under TLS a refused connection is
// closed without an answer, since one in plain text would only garble the
// client's handshake.
func TestRefusalsUnderTLSWriteNothing(t *testing.T) {
	certFile, keyFile, roots := testdeps.SelfSignedCert(t, t.TempDir(), "refusals")
	for _, limit := range []string{"-max-conns", "-max-conns-per-ip"} {
		t.Run(limit, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, limit, "1", "-tls-cert", certFile, "-tls-key", keyFile)
			cert, err := newCertificate(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			set := metrics.NewSet()
			s := newSubsystem(t.Context(), common{cfg: cfg, draining: new(atomic.Bool), tlsConfig: cert.serverConfig(), set: set, log: newLogger(io.Discard, "info", "text")}, "test", ln)
			serveUntilCleanup(t, s)

			held := tls.Client(testdeps.DialKept(t, ln.Addr().String()), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
			held.SetDeadline(time.Now().Add(time.Minute))
			const request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
			io.WriteString(held, request)
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(held)); err != nil || resp.StatusCode() != 200 {
				t.Fatalf("held connection: %v %d", err, resp.StatusCode())
			}
			checkAnswer(t, request, &resp)
			// A plain-text answer would end the client's handshake with
			// "first record does not look like a TLS handshake".
			c := testdeps.DialKept(t, ln.Addr().String())
			c.SetDeadline(time.Now().Add(time.Minute))
			err = tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}).Handshake()
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("handshake on a refused connection: %v; want the connection closed", err)
			}
			// Counted under TLS as without it.
			if got := s.conns.Refusals(netx.RefusedMaxConns) + s.conns.Refusals(netx.RefusedPerIP); got != 1 {
				t.Errorf("%d refusals counted, want 1", got)
			}
		})
	}
}

// TestLingeringConnectionsCountAgainstMaxConns: a connection closed after
// a 413 is drained for a while before its socket closes, and it counts
// against -max-conns until then: a client announcing a huge body with
// Expect: 100-continue must not hold descriptors beyond the limit.
func TestLingeringConnectionsCountAgainstMaxConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "-max-conns", "1")
	cfg.LingerTimeout = 10 * time.Minute // longer than the test
	s := startSubsystem(t, cfg, ln)
	addr := ln.Addr().String()
	lingering := testdeps.DialKept(t, addr)
	lingering.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	io.WriteString(lingering, "POST /north/login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000000000000\r\n\r\n")
	r := bufio.NewReader(lingering)
	var resp fasthttp.Response
	if err := resp.Read(r); err != nil || resp.StatusCode() != 413 {
		t.Fatalf("Expect: 100-continue with a huge body: %v %d, want 413", err, resp.StatusCode())
	}
	checkAnswer(t, "POST /north/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n", &resp)
	// The server's FIN: it closed its side and now drains ours.
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the 413: %q, %v; want the server's FIN", rest, err)
	}
	if got := testdeps.ReadRefusal(t, addr); got != overloadedAnswer {
		t.Fatalf("a connection while one lingers, over -max-conns 1, got\n%q\nwant\n%q", got, overloadedAnswer)
	}
	// Once the client closes, the drain ends, the socket closes, and the
	// place is free again.
	lingering.Close()
	testdeps.WaitFor(t, "the lingering connection's socket to close", func() bool { return s.conns.OpenConns() == 0 })
	if resp := roundTrip(t, func() (net.Conn, error) { return net.Dial("tcp", addr) }, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode() != 200 {
		t.Fatalf("after the lingering connection closed, a new one got %d", resp.StatusCode())
	}
}

// -max-conns-per-ip counts an IPv6 client by its /64: a second address in
// the same /64 is over the limit, one in another /64 is not.
func TestMaxConnsPerIPKeysIPv6ByPrefix(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startSubsystem(t, testConfig(t, "-trusted-proxies", "127.0.0.1", "-proxy-protocol", "-max-conns-per-ip", "1"), ln)
	dial := func() net.Conn { return testdeps.DialKept(t, ln.Addr().String()) }
	proxyFrom := func(src string) string { return "PROXY TCP6 " + src + " 2001:db8::80 5555 80\r\n" }
	if st := loginVia(t, dial(), proxyFrom("2001:db8:0:7::1"), ""); st != 200 {
		t.Fatalf("first connection from 2001:db8:0:7::/64: status %d", st)
	}
	if st := loginVia(t, dial(), proxyFrom("2001:db8:0:8::1"), ""); st != 200 {
		t.Fatalf("a connection from the next /64: status %d, want 200", st)
	}
	c := dial()
	sendLogin(t, c, proxyFrom("2001:db8:0:7::2"), "")
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) { // closed with the login unread
		t.Fatalf("read %q, then %v", got, err)
	}
	testdeps.CheckRawAnswer(t, "", got) // written before the login was read
	const want = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: 64\r\n\r\n" +
		"too many connections from your address; reuse the ones you have\n"
	if string(got) != want {
		t.Fatalf("a second address in the same /64 got %q, want %q", got, want)
	}
}

func TestIPv6PrefixFlag(t *testing.T) {
	for _, v := range []string{"0", "129", "-1"} {
		_, err := config.Parse([]string{"-ipv6-prefix", v}, testdeps.NoEnv, nil)
		if err == nil || err.Error() != "-ipv6-prefix must be 1 to 128 (bits of an IPv6 address that name one client), not "+v {
			t.Errorf("-ipv6-prefix %s: %v", v, err)
		}
	}
	if cfg := testConfig(t); cfg.IPv6Prefix != 64 {
		t.Errorf("default -ipv6-prefix %d, want 64", cfg.IPv6Prefix)
	}
}
