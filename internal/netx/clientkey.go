package netx

import "net/netip"

// ClientKey is the address that stands for the client at ip in per-client
// limits (northd's failure buckets, MaxConnsPerIP): an IPv4 address
// itself, an IPv6 address the first ipv6Prefix bits of it. A host is
// usually given a whole IPv6 /64 and may use any address in it, so keying
// by the full address would hand it a fresh bucket per address. It
// allocates nothing: it is on every login's path.
func ClientKey(ip netip.Addr, ipv6Prefix int) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is6() {
		return ip // IPv4, or no address at all
	}
	p, _ := ip.Prefix(ipv6Prefix) // strips a zone; the bits (1 to 128) are the caller's to check, northd's at start
	return p.Addr()
}
