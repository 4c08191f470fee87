package main

import "net/netip"

// clientKey is the address that stands for the client at ip in per-client
// limits (failure buckets, -max-conns-per-ip): an IPv4 address itself, an
// IPv6 address the first ipv6Prefix bits of it. A host is usually given a
// whole IPv6 /64 and may use any address in it, so keying by the full
// address would hand it a fresh bucket per address. It allocates nothing.
func clientKey(ip netip.Addr, ipv6Prefix int) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is6() {
		return ip // IPv4, or no address at all
	}
	p, _ := ip.Prefix(ipv6Prefix) // strips a zone; the bits are checked at start
	return p.Addr()
}
