package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Allow is where webhooks may go: the operator's -push-allow networks,
// less the special addresses no entry names explicitly.
type Allow struct {
	prefixes []netip.Prefix
}

// special are the ranges a webhook must not reach unless the operator
// names them: a north server's claimed ip pointing northd at itself, its
// host's neighbours' link-local services, or a cloud's metadata service,
// is request forgery.
var special = []struct {
	name   string
	prefix netip.Prefix
}{
	// The metadata services first: inside link-local, an entry naming
	// link-local does not name them; only one naming the address does.
	{"cloud metadata", netip.MustParsePrefix("169.254.169.254/32")}, // AWS, GCP, Azure, OpenStack
	{"cloud metadata", netip.MustParsePrefix("fd00:ec2::254/128")},  // AWS over IPv6
	{"cloud metadata", netip.MustParsePrefix("100.100.100.200/32")}, // Alibaba Cloud
	{"cloud metadata", netip.MustParsePrefix("169.254.170.2/32")},   // AWS ECS task credentials
	{"cloud metadata", netip.MustParsePrefix("168.63.129.16/32")},   // Azure wire server, outside link-local
	{"cloud metadata", netip.MustParsePrefix("192.0.0.192/32")},     // Oracle Cloud (older instances)
	{"loopback", netip.MustParsePrefix("127.0.0.0/8")},
	{"loopback", netip.MustParsePrefix("::1/128")},
	{"this network", netip.MustParsePrefix("0.0.0.0/8")},
	{"unspecified", netip.MustParsePrefix("::/128")},
	{"link-local", netip.MustParsePrefix("169.254.0.0/16")},
	{"link-local", netip.MustParsePrefix("fe80::/10")},
	{"multicast", netip.MustParsePrefix("224.0.0.0/4")},
	{"multicast", netip.MustParsePrefix("ff00::/8")},
	{"broadcast", netip.MustParsePrefix("255.255.255.255/32")},
}

// ParseAllow reads -push-allow's CIDRs (or single addresses).
func ParseAllow(list []string) (*Allow, error) {
	a := &Allow{}
	for _, e := range list {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(e, "/") {
			p, err = netip.ParsePrefix(e)
		} else {
			var ip netip.Addr
			if ip, err = netip.ParseAddr(e); err == nil {
				p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", e)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		a.prefixes = append(a.prefixes, p.Masked())
	}
	return a, nil
}

// Empty reports whether no network is allowed: webhooks are off.
func (a *Allow) Empty() bool { return len(a.prefixes) == 0 }

// Permits reports whether a webhook may go to ip, and when not, why.
func (a *Allow) Permits(ip netip.Addr) (bool, string) {
	ip = ip.Unmap()
	for _, s := range special {
		if !s.prefix.Contains(ip) {
			continue
		}
		// Only an entry inside the special range names it.
		for _, p := range a.prefixes {
			if p.Contains(ip) && s.prefix.Bits() <= p.Bits() && s.prefix.Contains(p.Addr()) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s is a %s address, which -push-allow permits only when an entry names that range (such as %s)", ip, s.name, s.prefix)
	}
	for _, t := range translations {
		if t.prefix.Contains(ip) {
			return a.permitsTranslated(ip, t)
		}
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%s is outside -push-allow", ip)
}

// translations are the IPv6 ranges a translator or a tunnel carries to an
// IPv4 address written inside the IPv6 one: through them an IPv6 entry of
// -push-allow would reach every IPv4 address, loopback and the metadata
// services included. Such an address is permitted only when an entry
// names its range (a catch-all such as ::/0 is written for IPv6 hosts,
// not for a translator's) and the IPv4 addresses it carries are each
// permitted by the IPv4 rules, with their own refusals. Either half alone
// is not enough: naming 64:ff9b::/96 for a few translated north servers
// must not open 169.254.169.254 through the translator, and an IPv4 rule
// alone would open every translator on the path for it.
var translations = []translation{
	{"NAT64", netip.MustParsePrefix("64:ff9b::/96"), func(b [16]byte, _ int) []netip.Addr { return []netip.Addr{rfc6052(b, 96)} }},
	// Local use (RFC 8215): where the IPv4 address sits depends on the
	// operator's translator, whose prefix the naming entry is (/48, /56,
	// /64 or /96; longer entries name addresses of a /96).
	{"NAT64", netip.MustParsePrefix("64:ff9b:1::/48"), func(b [16]byte, bits int) []netip.Addr { return []netip.Addr{rfc6052(b, bits)} }},
	{"6to4", netip.MustParsePrefix("2002::/16"), func(b [16]byte, _ int) []netip.Addr { return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))} }},
	// Teredo (RFC 4380): the server, then the client, its bits inverted.
	{"Teredo", netip.MustParsePrefix("2001::/32"), func(b [16]byte, _ int) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte(b[4:8])), netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
	}},
	{"IPv4-compatible", netip.MustParsePrefix("::/96"), func(b [16]byte, _ int) []netip.Addr { return []netip.Addr{netip.AddrFrom4([4]byte(b[12:]))} }},
	{"IPv4-translated (SIIT)", netip.MustParsePrefix("::ffff:0:0:0/96"), func(b [16]byte, _ int) []netip.Addr { return []netip.Addr{netip.AddrFrom4([4]byte(b[12:]))} }},
}

// rfc6052 is the IPv4 address in b under a translator's prefix of bits
// (RFC 6052, section 2.2): bits 64 to 71 are skipped.
func rfc6052(b [16]byte, bits int) netip.Addr {
	var at []int
	switch {
	case bits >= 96:
		at = []int{12, 13, 14, 15}
	case bits >= 64:
		at = []int{9, 10, 11, 12}
	case bits >= 56:
		at = []int{7, 9, 10, 11}
	default:
		at = []int{6, 7, 9, 10}
	}
	return netip.AddrFrom4([4]byte{b[at[0]], b[at[1]], b[at[2]], b[at[3]]})
}

type translation struct {
	name   string
	prefix netip.Prefix
	// ipv4 are the addresses b carries, when the entry naming it is bits long.
	ipv4 func(b [16]byte, bits int) []netip.Addr
}

func (a *Allow) permitsTranslated(ip netip.Addr, t translation) (bool, string) {
	named := -1
	for _, p := range a.prefixes {
		if p.Contains(ip) && t.prefix.Bits() <= p.Bits() && t.prefix.Contains(p.Addr()) && p.Bits() > named {
			named = p.Bits()
		}
	}
	if named < 0 {
		var carried []string
		for _, v4 := range t.ipv4(ip.As16(), 128) {
			carried = append(carried, v4.String())
		}
		return false, fmt.Sprintf("%s is a %s address, which a translator carries to %s: -push-allow permits it only when an entry names that range (such as %s), and then only where the IPv4 address is permitted too", ip, t.name, strings.Join(carried, " and "), t.prefix)
	}
	for _, v4 := range t.ipv4(ip.As16(), named) {
		if ok, why := a.Permits(v4); !ok {
			return false, fmt.Sprintf("%s is a %s address, which a translator carries to %s: %s", ip, t.name, v4, why)
		}
	}
	return true, ""
}

// RefusedError is a connection the dialer would not make.
type RefusedError struct {
	Addr   string
	Reason string
}

func (e *RefusedError) Error() string {
	return "webhook to " + e.Addr + " refused: " + e.Reason
}

// ClientOptions shape the client Allow makes.
type ClientOptions struct {
	Timeout          time.Duration // of one attempt, answer included
	RootCAs          *x509.CertPool
	MaxResponseBytes int64 // of an answer's body: a receiver cannot make northd read more
}

// Client is the HTTP client webhooks go out with: its dialer refuses, on
// the address it is about to connect to (after any name is resolved), what
// a does not permit; it follows no redirect and takes no proxy from the
// environment.
func (a *Allow) Client(o ClientOptions) *http.Client {
	dialer := &net.Dialer{
		Timeout: o.Timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &RefusedError{Addr: address, Reason: "not an IP address and port"}
			}
			if ok, why := a.Permits(ap.Addr()); !ok {
				return &RefusedError{Addr: address, Reason: why}
			}
			return nil
		},
	}
	tlsConfig := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	return &http.Client{
		Timeout: o.Timeout,
		Transport: capBodies{max: o.MaxResponseBytes, next: &http.Transport{
			Proxy:       nil,
			DialContext: dialer.DialContext,
			// The handshake is made here, not by the transport, so
			// that its failure is told apart (a TLSError) from an
			// answer that is not HTTP.
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				cfg := tlsConfig.Clone()
				cfg.ServerName, _, _ = net.SplitHostPort(addr)
				ctx, cancel := context.WithTimeout(ctx, o.Timeout)
				defer cancel()
				tc := tls.Client(conn, cfg)
				if err := tc.HandshakeContext(ctx); err != nil {
					conn.Close()
					return nil, &TLSError{err}
				}
				return tc, nil
			},
			ResponseHeaderTimeout:  o.Timeout,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 16 << 10,
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// capBodies cuts every answer's body at max bytes, whoever reads it.
type capBodies struct {
	max  int64
	next http.RoundTripper
}

func (c capBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		resp.Body = cappedBody{io.LimitReader(resp.Body, c.max), resp.Body}
	}
	return resp, err
}

type cappedBody struct {
	io.Reader
	io.Closer
}

// URLError is a subscription url northd will not post to.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return e.Reason }

// CheckURL reads a subscription's url: http or https, no credentials, its
// host the north server's login ip (an IP literal; a name could point
// anywhere), which a permits.
func CheckURL(raw string, loginIP netip.Addr, a *Allow) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, &URLError{fmt.Sprintf("url %q is not an http:// or https:// url such as http://%s:8080/northd", raw, hostOf(loginIP))}
	}
	if u.User != nil {
		return nil, &URLError{"url must carry no user or password: the signature proves the sender"}
	}
	if u.Fragment != "" {
		return nil, &URLError{"url must have no #fragment"}
	}
	ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]"))
	if err != nil {
		return nil, &URLError{fmt.Sprintf("url's host %q is not an IP address: webhooks go to the ip you logged in with, %s", u.Hostname(), loginIP)}
	}
	if ip.Zone() != "" || ip.Unmap() != loginIP.Unmap() {
		return nil, &URLError{fmt.Sprintf("url's host %s is not the ip you logged in with, %s: webhooks go to your own ip", ip, loginIP)}
	}
	if ok, why := a.Permits(ip); !ok {
		return nil, &URLError{"url cannot be served: " + why + "; ask the operator"}
	}
	return u, nil
}

func hostOf(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		return "[" + ip.String() + "]"
	}
	return ip.Unmap().String()
}

// IsRefused reports whether err is a connection the dialer refused.
func IsRefused(err error) bool {
	_, ok := errors.AsType[*RefusedError](err)
	return ok
}
