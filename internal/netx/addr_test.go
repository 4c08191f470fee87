package netx

import (
	"net/netip"
	"testing"
)

// FuzzParseIP checks ParseIP against netip.ParseAddr, which it must agree
// with except that it refuses zones and unmaps IPv4-mapped addresses.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "::1", "::ffff:1.2.3.4", "fe80::1%eth0", "", "1.2.3.04", "0.0.0.00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseIP([]byte(s))
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Zone() == ""
		if ok != wantOK || (ok && got != want.Unmap()) {
			t.Fatalf("ParseIP(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	})
}
