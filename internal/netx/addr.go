package netx

import (
	"net"
	"net/netip"
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
