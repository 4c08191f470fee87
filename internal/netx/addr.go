package netx

import (
	"net"
	"net/netip"
	"unsafe"
)

// AddrOf returns the IP of a connection's address, IPv4-mapped addresses
// unmapped, or the zero Addr for addresses without one.
func AddrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}

// MaxIPLen is the longest textual IP address ParseIP accepts: a caller
// that keeps one byte more than this can tell a longer value is none.
const MaxIPLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")

// ParseIP accepts an IPv4 or IPv6 address without a zone, and allocates
// nothing: proxy headers and login bodies are parsed on every request.
// IPv4-mapped IPv6 addresses are recorded as the IPv4 address they map.
func ParseIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > MaxIPLen {
		return netip.Addr{}, false
	}
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	// The string shares b's memory only for the call: a parsed Addr
	// without a zone keeps nothing of it, and errors are dropped.
	addr, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// parseIPv4 parses dotted-quad IPv4 as netip.ParseAddr does (four decimal
// fields of 0-255, no leading zeros) in a third of its time; anything else
// is left to netip.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	field, digits, val := 0, 0, 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && val == 0 {
				return netip.Addr{}, false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.' && digits > 0 && field < 3:
			ip[field] = byte(val)
			field, digits, val = field+1, 0, 0
		default:
			return netip.Addr{}, false
		}
		if i == len(b)-1 && (field != 3 || digits == 0) {
			return netip.Addr{}, false
		}
	}
	ip[3] = byte(val)
	return netip.AddrFrom4(ip), true
}
