package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/valyala/fasthttp"

	"northd/internal/config"
	"northd/internal/store"
	"northd/internal/testdeps"
)

// loginVia sends a login without ip on c, after prefix, and returns the
// status of the answer. It fails the test when no answer can be read,
// whatever the reason: a closed connection and a server that never answers
// are both failures here.
func loginVia(t *testing.T, c net.Conn, prefix, extraHeaders string) int {
	t.Helper()
	request := sendLogin(t, c, prefix, extraHeaders)
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading the answer to a login after %q: %v", prefix, err)
	}
	checkAnswer(t, request, &resp)
	return resp.StatusCode()
}

// loginClosedWithoutAnswer sends a login without ip on c, after prefix,
// and requires the server to close the connection without writing a byte.
func loginClosedWithoutAnswer(t *testing.T, c net.Conn, prefix string) {
	t.Helper()
	sendLogin(t, c, prefix, "")
	got, err := io.ReadAll(c)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil // closed with our request unread: as good as a FIN here
	}
	if err != nil || len(got) != 0 {
		t.Fatalf("login after %q: read %q, %v; want the connection closed without an answer", prefix, got, err)
	}
}

// sendLogin sends a login on c after prefix and returns the login's
// request, without prefix.
func sendLogin(t *testing.T, c net.Conn, prefix, extraHeaders string) string {
	t.Helper()
	// A generous bound: only a server that hangs gets near it.
	c.SetDeadline(time.Now().Add(time.Minute))
	body := `{"username":"via-proxy","password":"p"}`
	request := "POST /north/login HTTP/1.1\r\nHost: x\r\n" + extraHeaders + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(c, prefix+request); err != nil {
		t.Fatalf("sending a login: %v", err)
	}
	return request
}

func registryIPs(s *subsystem) string {
	var ips []string
	page, _ := s.store.Page(context.Background(), store.Cursor{}, 1000)
	for _, e := range page.NorthServers {
		ips = append(ips, e.IP)
	}
	return strings.Join(ips, ",")
}

func TestProxyProtocolFromTrustedPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSubsystem(t, testConfig(t, "-trusted-proxies", "127.0.0.1", "-proxy-protocol", "-max-conns-per-ip", "1"), ln)
	dial := func() net.Conn { return testdeps.DialKept(t, ln.Addr().String()) }

	if st := loginVia(t, dial(), "PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n", ""); st != 200 {
		t.Fatalf("v1 login: status %d", st)
	}
	c := dial()
	v2 := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("2001:db8::77"), Port: 4444}, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80})
	if _, err := v2.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	if st := loginVia(t, c, "", ""); st != 200 {
		t.Fatalf("v2 login: status %d", st)
	}
	// A second connection from the same client behind the proxy counts
	// against that client's limit, not the proxy's.
	if st := loginVia(t, dial(), "PROXY TCP4 203.0.113.9 127.0.0.1 5556 80\r\n", ""); st != 429 {
		t.Fatalf("second connection of 203.0.113.9: status %d, want 429", st)
	}
	// A malformed PROXY header, or none from a trusted peer, ends the
	// connection before any request is read.
	loginClosedWithoutAnswer(t, dial(), "PROXY TCP4 not-an-address\r\n")
	loginClosedWithoutAnswer(t, dial(), "")
	if got, want := registryIPs(s), "2001:db8::77,203.0.113.9"; got != want {
		t.Fatalf("registry ips %s, want %s", got, want)
	}
	// Counted: the two logins and the 429, and no answer that was not sent.
	label := `subsystem="` + s.name + `"`
	m := metricsText(s)
	for _, line := range []string{
		`northd_requests_total{` + label + `,route="login",status="200"} 2`,
		`northd_requests_total{` + label + `,route="refused",status="429"} 1`,
	} {
		if !hasMetricLine(m, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if strings.Contains(m, `route="unreadable"`) {
		t.Errorf("metrics count an unreadable request:\n%s", m)
	}
}

func TestProxyHeadersFromUntrustedPeerIgnored(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSubsystem(t, testConfig(t, "-trusted-proxies", "10.0.0.0/8", "-proxy-protocol"), ln)
	dial := func() net.Conn { return testdeps.DialKept(t, ln.Addr().String()) }
	if st := loginVia(t, dial(), "PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n", ""); st != 400 {
		t.Fatalf("PROXY header from an untrusted peer: status %d, want 400", st)
	}
	if st := loginVia(t, dial(), "", "X-Forwarded-For: 203.0.113.10\r\nX-Real-IP: 203.0.113.11\r\n"); st != 200 {
		t.Fatalf("login with forged headers: status %d", st)
	}
	if got := registryIPs(s); got != "127.0.0.1" {
		t.Fatalf("registry ips %s, want only the real peer 127.0.0.1", got)
	}
}

func TestForwardedForFromTrustedProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSubsystem(t, testConfig(t, "-trusted-proxies", "127.0.0.0/8"), ln)
	if st := loginVia(t, testdeps.DialKept(t, ln.Addr().String()), "", "X-Forwarded-For: 203.0.113.66, 198.51.100.20\r\n"); st != 200 {
		t.Fatalf("status %d", st)
	}
	if got := registryIPs(s); got != "198.51.100.20" {
		t.Fatalf("registry ips %s, want 198.51.100.20", got)
	}
}

// TestRealIPAgainstForgedForwardedFor: behind a proxy that sets X-Real-IP
// and passes the client's X-Forwarded-For through, -client-ip-header
// X-Real-IP takes the proxy's word, never the client's.
func TestRealIPAgainstForgedForwardedFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSubsystem(t, testConfig(t, "-trusted-proxies", "127.0.0.1", "-client-ip-header", "X-Real-IP"), ln)
	// What such a proxy sends: the client's forged line, then its own
	// X-Real-IP with the address it saw.
	if st := loginVia(t, testdeps.DialKept(t, ln.Addr().String()), "", "X-Forwarded-For: 203.0.113.66\r\nX-Real-IP: 198.51.100.20\r\n"); st != 200 {
		t.Fatalf("status %d", st)
	}
	if got := registryIPs(s); got != "198.51.100.20" {
		t.Fatalf("registry ips %s, want the proxy's X-Real-IP 198.51.100.20", got)
	}
}

// TestProxyProtocolAndHeadersTrustedApart: -proxy-protocol-from names the
// balancers whose PROXY headers are believed, -trusted-proxies the proxies
// whose X-Forwarded-For is, and neither list implies the other.
func TestProxyProtocolAndHeadersTrustedApart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSubsystem(t, testConfig(t, "-proxy-protocol-from", "127.0.0.1", "-trusted-proxies", "10.0.0.0/8"), ln)
	dial := func() net.Conn { return testdeps.DialKept(t, ln.Addr().String()) }
	// A client straight behind the balancer: its forged header is not
	// believed, though the balancer is trusted for PROXY headers.
	if st := loginVia(t, dial(), "PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n", "X-Forwarded-For: 203.0.113.66\r\n"); st != 200 {
		t.Fatalf("login through the balancer: status %d", st)
	}
	// A proxy in 10.0.0.0/8 behind the balancer: its header is.
	if st := loginVia(t, dial(), "PROXY TCP4 10.1.1.1 127.0.0.1 5556 80\r\n", "X-Forwarded-For: 198.51.100.20\r\n"); st != 200 {
		t.Fatalf("login through the balancer and a trusted proxy: status %d", st)
	}
	// A header alone, from the balancer's address, is not believed
	// either: 127.0.0.1 is not in -trusted-proxies. And without a PROXY
	// header the balancer's connection is closed unanswered.
	loginClosedWithoutAnswer(t, dial(), "")
	if got, want := registryIPs(s), "198.51.100.20,203.0.113.9"; got != want {
		t.Fatalf("registry ips %s, want %s", got, want)
	}
}

func TestClientAddressFlagsRefused(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-client-ip-header", "Forwarded"}, `-client-ip-header must be X-Forwarded-For or X-Real-IP, not "Forwarded"`},
		{[]string{"-proxy-protocol-from", "10.0.0.0/99"}, `invalid value "10.0.0.0/99" for flag -proxy-protocol-from: "10.0.0.0/99" is not an address or CIDR such as 10.0.0.0/8 (run northd -h for the list of flags)`},
		{[]string{"-proxy-protocol", "-trusted-proxies", "10.0.0.5", "-proxy-protocol-from", "10.0.0.5"}, "-proxy-protocol and -proxy-protocol-from both given: keep -proxy-protocol-from, which believes PROXY headers from its own list"},
	} {
		_, err := config.Parse(tt.args, testdeps.NoEnv, io.Discard)
		var usage config.UsageError
		if !errors.As(err, &usage) || err.Error() != tt.want {
			t.Errorf("%v: got %v, want the usage error %q", tt.args, err, tt.want)
		}
	}
	cfg, err := config.Parse([]string{"-client-ip-header", "x-real-ip"}, testdeps.NoEnv, io.Discard)
	if err != nil || cfg.ClientIPHeader != "X-Real-IP" {
		t.Errorf("-client-ip-header x-real-ip: %q, %v", cfg.ClientIPHeader, err)
	}
	// -proxy-protocol, as before -proxy-protocol-from: PROXY headers
	// and X-Forwarded-For both from -trusted-proxies.
	cfg, err = config.Parse([]string{"-proxy-protocol", "-trusted-proxies", "10.0.0.5"}, testdeps.NoEnv, io.Discard)
	if err != nil || fmt.Sprint(cfg.ProxyProtocolFrom) != "[10.0.0.5/32]" || fmt.Sprint(cfg.TrustedProxies) != "[10.0.0.5/32]" || cfg.ClientIPHeader != "X-Forwarded-For" {
		t.Errorf("-proxy-protocol -trusted-proxies 10.0.0.5: PROXY from %v, headers from %v (%s), %v", cfg.ProxyProtocolFrom, cfg.TrustedProxies, cfg.ClientIPHeader, err)
	}
}
