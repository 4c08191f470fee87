package netx

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"northd/internal/wire"
)

// trustedProxies are the peers whose word on the client address is
// believed (-trusted-proxies for a header, -proxy-protocol-from for a
// PROXY header): the word of anyone else is ignored, since any client can
// send it.
type trustedProxies []netip.Prefix

func (t trustedProxies) trusts(ip netip.Addr) bool {
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ClientAddrs is how a request's client address is learned: which peers
// are believed, and from which one header (-client-ip-header). One header
// only: were X-Real-IP a fallback for X-Forwarded-For (or the other way
// round), a client could send the header its proxy does not set and
// choose its address. The zero value believes no one.
type ClientAddrs struct {
	trusted    trustedProxies
	fromRealIP bool // -client-ip-header X-Real-IP; else X-Forwarded-For
}

// NewClientAddrs believes header from the peers in trusted
// (-trusted-proxies) only. header is X-Forwarded-For or X-Real-IP, in any
// case; anything but X-Real-IP reads X-Forwarded-For.
func NewClientAddrs(trusted []netip.Prefix, header string) ClientAddrs {
	return ClientAddrs{trusted: trustedProxies(trusted), fromRealIP: strings.EqualFold(header, string(headerXRealIP))}
}

// ClientAddr returns the client behind peer: from a trusted peer, what
// the header says when it holds a valid address; otherwise peer itself.
// It allocates nothing.
func (r ClientAddrs) ClientAddr(peer netip.Addr, h *fasthttp.RequestHeader) netip.Addr {
	if len(r.trusted) == 0 || !r.trusted.trusts(peer) {
		return peer
	}
	if r.fromRealIP {
		return realIP(peer, h)
	}
	return r.trusted.forwardedFor(peer, h)
}

// realIP is the last X-Real-IP line, or peer when there is none or it
// holds no valid address. The proxy must set it, replacing the client's.
func realIP(peer netip.Addr, h *fasthttp.RequestHeader) netip.Addr {
	var v []byte
	for k, line := range h.All() {
		if bytes.EqualFold(k, headerXRealIP) {
			v = line
		}
	}
	if ip, ok := wire.ParseIP(bytes.TrimSpace(v)); ok {
		return ip
	}
	return peer
}

// maxForwardedLines bounds how many X-Forwarded-For header lines are read:
// the last ones, which the trusted proxies appended. Lines before them can
// only come from the client.
const maxForwardedLines = 8

// forwardedFor returns the rightmost X-Forwarded-For hop that is not
// itself a trusted proxy (hops to its left could be forged by the client),
// or peer when there is none or a hop is not a valid address. Only the last
// maxForwardedLines lines are read: when there are more and every hop in
// those is trusted, the client is somewhere further left, so the answer is
// peer.
func (t trustedProxies) forwardedFor(peer netip.Addr, h *fasthttp.RequestHeader) netip.Addr {
	// lines is a ring: after the loop it holds the last lines seen, line
	// i at lines[i%maxForwardedLines].
	var lines [maxForwardedLines][]byte
	n := 0
	for k, v := range h.All() {
		if bytes.EqualFold(k, headerXForwardedFor) {
			lines[n%maxForwardedLines] = v
			n++
		}
	}
	for i := n - 1; i >= 0 && i >= n-maxForwardedLines; i-- {
		hops := lines[i%maxForwardedLines]
		for len(hops) > 0 {
			j := bytes.LastIndexByte(hops, ',')
			hop := bytes.TrimSpace(hops[j+1:])
			if j < 0 {
				hops = nil
			} else {
				hops = hops[:j]
			}
			ip, ok := wire.ParseIP(hop)
			if !ok {
				return peer
			}
			if !t.trusts(ip) {
				return ip
			}
		}
	}
	return peer
}

var (
	headerXForwardedFor = []byte("X-Forwarded-For")
	headerXRealIP       = []byte("X-Real-IP")
)
