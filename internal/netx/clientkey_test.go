package netx

import (
	"net/netip"
	"testing"

	"northd/internal/testdeps"
)

// Keying a client is on every login's path: it allocates nothing, zoned
// IPv6 addresses included.
func TestClientKeyAllocatesNothing(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::ffff:192.0.2.1"), {}}
	if got := ClientKey(addrs[1], 64); got != netip.MustParseAddr("fe80::") {
		t.Errorf("ClientKey(fe80::1%%eth0) = %v, want fe80::", got)
	}
	n := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			ClientKey(a, 64)
		}
	})
	if n != 0 && !testdeps.RaceEnabled {
		t.Errorf("ClientKey allocates %v times", n)
	}
}
