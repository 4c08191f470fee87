package main

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"northd/internal/config"
	"northd/internal/testdeps"
)

// Addresses in one IPv6 /64 (the default -ipv6-prefix) share one failure
// bucket; another /64 has its own, and IPv4 addresses each their own.
func TestFailureBucketsKeyIPv6ByPrefix(t *testing.T) {
	l := newFailureLimits(2, 50, time.Minute, 64)
	t0 := time.Unix(1700000000, 0)
	key := func(s string) addrKey { return l.addrKey(netip.MustParseAddr(s)) }
	l.byAddr.reserve(key("2001:db8:0:7::1"), t0)
	l.byAddr.reserve(key("2001:db8:0:7:ffff:ffff:ffff:ffff"), t0)
	for _, tt := range []struct {
		addr    string
		blocked bool
	}{
		{"2001:db8:0:7::1", true},
		{"2001:db8:0:7:aaaa::1", true}, // the same /64
		{"2001:db8:0:8::1", false},     // the next /64
		{"192.0.2.1", false},
	} {
		if _, blocked := l.byAddr.blocked(key(tt.addr), t0); blocked != tt.blocked {
			t.Errorf("%s after two failures in 2001:db8:0:7::/64: blocked %v, want %v", tt.addr, blocked, tt.blocked)
		}
	}
	l.byAddr.reserve(key("192.0.2.1"), t0)
	l.byAddr.reserve(key("192.0.2.1"), t0)
	if _, blocked := l.byAddr.blocked(key("192.0.2.2"), t0); blocked {
		t.Error("192.0.2.2 blocked by 192.0.2.1's failures: IPv4 is keyed by the whole address")
	}
	// IPv4 and its IPv4-mapped IPv6 form are one client.
	if key("::ffff:192.0.2.1") != key("192.0.2.1") {
		t.Error("an IPv4-mapped address has another key")
	}
	// -ipv6-prefix 128 keys every address apart.
	l128 := newFailureLimits(2, 50, time.Minute, 128)
	if l128.addrKey(netip.MustParseAddr("2001:db8::1")) == l128.addrKey(netip.MustParseAddr("2001:db8::2")) {
		t.Error("-ipv6-prefix 128: two addresses share a key")
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
	dial := func() net.Conn { return dialKept(t, ln.Addr().String()) }
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
