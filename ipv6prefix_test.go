package main

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"northd/internal/config"
	"northd/internal/testdeps"
)

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
