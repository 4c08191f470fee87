package main

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// trustedProxies are the peers whose word on the client address is
// believed: X-Forwarded-For and X-Real-IP headers from anyone else are
// ignored, since any client can send them.
type trustedProxies []netip.Prefix

func (t trustedProxies) trusts(ip netip.Addr) bool {
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// maxForwardedLines bounds how many X-Forwarded-For header lines are read:
// the last ones, which the trusted proxies appended. Lines before them can
// only come from the client.
const maxForwardedLines = 8

// clientAddr returns the client behind peer. From a trusted peer it is the
// rightmost X-Forwarded-For hop that is not itself a trusted proxy (hops to
// its left could be forged by the client), else X-Real-IP; otherwise, and
// whenever those headers hold no valid address, it is peer itself. Only the
// last maxForwardedLines X-Forwarded-For lines are read: when there are more
// and every hop in those is trusted, the client is somewhere further left,
// so the answer is peer.
func (t trustedProxies) clientAddr(peer netip.Addr, h *fasthttp.RequestHeader) netip.Addr {
	if len(t) == 0 || !t.trusts(peer) {
		return peer
	}
	// lines is a ring: after the loop it holds the last lines seen, line
	// i at lines[i%maxForwardedLines].
	var lines [maxForwardedLines][]byte
	n := 0
	var realIP []byte
	for k, v := range h.All() {
		switch {
		case bytes.EqualFold(k, headerXForwardedFor):
			lines[n%maxForwardedLines] = v
			n++
		case bytes.EqualFold(k, headerXRealIP):
			realIP = v
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
			ip, ok := parseIP(hop)
			if !ok {
				return peer
			}
			if !t.trusts(ip) {
				return ip
			}
		}
	}
	if n > maxForwardedLines {
		return peer
	}
	if ip, ok := parseIP(bytes.TrimSpace(realIP)); ok {
		return ip
	}
	return peer
}

var (
	headerXForwardedFor = []byte("X-Forwarded-For")
	headerXRealIP       = []byte("X-Real-IP")
)
