package netx

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

var testTrustedProxies = trustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}

// forgedLines are n X-Forwarded-For lines a client could send,
// 203.0.113.1 to 203.0.113.n.
func forgedLines(n int) [][2]string {
	var lines [][2]string
	for i := 1; i <= n; i++ {
		lines = append(lines, [2]string{"X-Forwarded-For", "203.0.113." + strconv.Itoa(i)})
	}
	return lines
}

// trustedLines are n X-Forwarded-For lines naming trusted proxies,
// 10.0.0.1 to 10.0.0.n.
func trustedLines(n int) [][2]string {
	var lines [][2]string
	for i := 1; i <= n; i++ {
		lines = append(lines, [2]string{"X-Forwarded-For", "10.0.0." + strconv.Itoa(i)})
	}
	return lines
}

func TestClientAddr(t *testing.T) {
	forwardedFor := ClientAddrs{trusted: testTrustedProxies}
	realIP := ClientAddrs{trusted: testTrustedProxies, fromRealIP: true}
	tests := []struct {
		name    string
		rule    ClientAddrs
		peer    string
		headers [][2]string
		want    string
	}{
		{"untrusted peer, forged headers ignored", forwardedFor, "198.51.100.7", [][2]string{{"X-Forwarded-For", "203.0.113.1"}, {"X-Real-IP", "203.0.113.2"}}, "198.51.100.7"},
		{"untrusted peer, forged X-Real-IP ignored", realIP, "198.51.100.7", [][2]string{{"X-Forwarded-For", "203.0.113.1"}, {"X-Real-IP", "203.0.113.2"}}, "198.51.100.7"},
		{"trusted peer, no headers", forwardedFor, "10.1.1.1", nil, "10.1.1.1"},
		{"trusted peer, no X-Real-IP", realIP, "10.1.1.1", [][2]string{{"X-Forwarded-For", "203.0.113.1"}}, "10.1.1.1"},
		{"rightmost untrusted hop", forwardedFor, "10.1.1.1", [][2]string{{"X-Forwarded-For", "203.0.113.66, 198.51.100.9"}}, "198.51.100.9"},
		{"trusted hops skipped", forwardedFor, "10.1.1.1", [][2]string{{"X-Forwarded-For", "198.51.100.9 , 10.2.2.2,127.0.0.1"}}, "198.51.100.9"},
		{"header lines in order", forwardedFor, "10.1.1.1", [][2]string{{"X-Forwarded-For", "203.0.113.66"}, {"x-forwarded-for", "198.51.100.9"}}, "198.51.100.9"},
		{"X-Real-IP", realIP, "127.0.0.1", [][2]string{{"X-Real-IP", " 2001:db8::5 "}}, "2001:db8::5"},
		{"X-Real-IP's last line", realIP, "127.0.0.1", [][2]string{{"X-Real-IP", "203.0.113.2"}, {"x-real-ip", "198.51.100.4"}}, "198.51.100.4"},
		{"garbage X-Real-IP", realIP, "10.1.1.1", [][2]string{{"X-Real-IP", "not-an-ip"}}, "10.1.1.1"},
		// One header is read, never the other: X-Real-IP is no fallback
		// for X-Forwarded-For, nor the other way round.
		{"X-Real-IP ignored under X-Forwarded-For", forwardedFor, "127.0.0.1", [][2]string{{"X-Real-IP", "203.0.113.2"}}, "127.0.0.1"},
		{"X-Forwarded-For ignored under X-Real-IP", realIP, "127.0.0.1", [][2]string{{"X-Real-IP", "198.51.100.4"}, {"X-Forwarded-For", "203.0.113.66"}}, "198.51.100.4"},
		{"garbage hop", forwardedFor, "10.1.1.1", [][2]string{{"X-Forwarded-For", "198.51.100.9, not-an-ip"}}, "10.1.1.1"},
		{"only trusted hops", forwardedFor, "10.1.1.1", [][2]string{{"X-Forwarded-For", "10.3.3.3"}, {"X-Real-IP", "198.51.100.4"}}, "10.1.1.1"},
		// A client that sends eight forged lines ahead of the proxy's own
		// must not push the proxy's line out of the ones read.
		{"nine lines, the proxy's last", forwardedFor, "10.1.1.1", append(forgedLines(8), [2]string{"X-Forwarded-For", "198.51.100.9"}), "198.51.100.9"},
		{"twelve lines, the last trusted", forwardedFor, "10.1.1.1", append(forgedLines(10), [2]string{"X-Forwarded-For", "198.51.100.9"}, [2]string{"X-Forwarded-For", "10.2.2.2"}), "198.51.100.9"},
		{"nine lines, the last eight trusted", forwardedFor, "10.1.1.1", append([][2]string{{"X-Forwarded-For", "198.51.100.9"}, {"X-Real-IP", "198.51.100.4"}}, trustedLines(8)...), "10.1.1.1"},
		{"eight lines, the last seven trusted", forwardedFor, "10.1.1.1", append([][2]string{{"X-Forwarded-For", "198.51.100.9"}}, trustedLines(7)...), "198.51.100.9"},
	}
	for _, tt := range tests {
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		for _, kv := range tt.headers {
			h.Add(kv[0], kv[1])
		}
		got := tt.rule.ClientAddr(netip.MustParseAddr(tt.peer), &h)
		if got.String() != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, got, tt.want)
		}
	}
	for _, fromRealIP := range []bool{false, true} {
		var h fasthttp.RequestHeader
		h.Add("X-Forwarded-For", "203.0.113.1")
		h.Add("X-Real-IP", "203.0.113.2")
		if got := (ClientAddrs{fromRealIP: fromRealIP}).ClientAddr(netip.MustParseAddr("10.1.1.1"), &h); got.String() != "10.1.1.1" {
			t.Errorf("no trusted proxies, X-Real-IP %v: got %v", fromRealIP, got)
		}
	}
}

// NewClientAddrs reads X-Real-IP when told so, in any case, and
// X-Forwarded-For otherwise.
func TestNewClientAddrs(t *testing.T) {
	for header, want := range map[string]bool{"X-Real-IP": true, "x-real-ip": true, "X-Forwarded-For": false} {
		if got := NewClientAddrs(testTrustedProxies, header); got.fromRealIP != want || len(got.trusted) != len(testTrustedProxies) {
			t.Errorf("NewClientAddrs(%s): %+v, want X-Real-IP %v", header, got, want)
		}
	}
}

// The tests named *Allocat* hold the client address to 0 allocations per
// request. Under the race detector they run, with their answers checked,
// and then skip saying that they did not count; make test runs them again
// without it.

func TestClientAddrAllocations(t *testing.T) {
	peer := netip.MustParseAddr("10.1.1.1")
	for _, tt := range []struct {
		name       string
		fromRealIP bool
		lines      [][2]string
	}{
		{"one line", false, [][2]string{{"X-Forwarded-For", "203.0.113.66, 198.51.100.9"}}},
		{"twelve lines", false, append(forgedLines(11), [2]string{"X-Forwarded-For", "198.51.100.9, 10.2.2.2"})},
		{"X-Real-IP", true, [][2]string{{"X-Forwarded-For", "203.0.113.66"}, {"X-Real-IP", "198.51.100.9"}}},
	} {
		var h fasthttp.RequestHeader
		for _, kv := range tt.lines {
			h.Add(kv[0], kv[1])
		}
		rule := ClientAddrs{trusted: testTrustedProxies, fromRealIP: tt.fromRealIP}
		if got := rule.ClientAddr(peer, &h); got != netip.MustParseAddr("198.51.100.9") {
			t.Fatalf("%s: client %v, want 198.51.100.9", tt.name, got)
		}
		testdeps.WantAllocs(t, "ClientAddr, "+tt.name, 0, func() { rule.ClientAddr(peer, &h) })
	}
}
