package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

const (
	// A connection closed after a 413 is drained for at most this long and
	// this many bytes, so the client reads the answer instead of a reset
	// caused by the body it was still sending.
	lingerTimeout  = 2 * time.Second
	lingerMaxBytes = 64 << 20
)

// connListener wraps a subsystem's listener: it counts open connections,
// enforces the per-client-address connection limit, and hands out conns
// that can be closed gently. It stands in for fasthttp's MaxConnsPerIP,
// whose wrapper would hide our conn type from the error handler and which
// would count a proxy's address instead of the client's.
type connListener struct {
	net.Listener
	maxPerIP int
	log      *slog.Logger
	open     *atomic.Int64

	mu    sync.Mutex
	perIP map[netip.Addr]int
}

const tooManyConnsBody = "too many connections from your address; reuse the ones you have\n"

var tooManyConnsResponse = []byte("HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: " +
	strconv.Itoa(len(tooManyConnsBody)) + "\r\n\r\n" + tooManyConnsBody)

var errTooManyConns = errors.New("too many connections from one client address")

// newConnListener wraps ln. With PROXY protocol on, connections from
// trusted peers must start with a PROXY header (v1 or v2), whose source
// address then stands for the peer's; other peers' connections are taken
// as they are, so a PROXY header from them is just a malformed request.
func newConnListener(ln net.Listener, cfg config, open *atomic.Int64, log *slog.Logger) *connListener {
	if cfg.ProxyProtocol {
		trusted := trustedProxies(cfg.TrustedProxies)
		ln = &proxyproto.Listener{
			Listener: ln,
			ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				if trusted.trusts(addrOf(o.Upstream)) {
					return proxyproto.REQUIRE, nil
				}
				return proxyproto.SKIP, nil
			},
			ReadHeaderTimeout: cfg.ReadTimeout,
		}
	}
	return &connListener{Listener: ln, maxPerIP: cfg.MaxConnsPerIP, open: open, log: log, perIP: make(map[netip.Addr]int)}
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &serverConn{Conn: c, ln: l}, nil
}

func (l *connListener) admitIP(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip] >= l.maxPerIP {
		return false
	}
	l.perIP[ip]++
	return true
}

func (l *connListener) releaseIP(ip netip.Addr) {
	l.mu.Lock()
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

// serverConn is a connection accepted by connListener.
type serverConn struct {
	net.Conn
	ln *connListener

	// The client address is learned on the first Read, in the
	// connection's own goroutine: with PROXY protocol that means reading
	// the header, which must not hold up the accept loop.
	state     atomic.Int32 // connNew, connAdmitted or connRefused
	ip        netip.Addr   // written before state becomes connAdmitted
	linger    atomic.Bool
	closeOnce sync.Once
}

const (
	connNew int32 = iota
	connAdmitted
	connRefused
)

func (c *serverConn) Read(p []byte) (int, error) {
	if c.state.Load() != connAdmitted {
		if err := c.admit(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *serverConn) admit() error {
	if c.state.Load() == connRefused {
		return errTooManyConns
	}
	if pc, ok := c.Conn.(*proxyproto.Conn); ok {
		// Read the PROXY header now, so that a malformed one ends this
		// connection before anything else is read from it.
		if _, err := pc.Read(nil); err != nil {
			return err
		}
	}
	ip := addrOf(c.Conn.RemoteAddr())
	if c.ln.maxPerIP > 0 && !c.ln.admitIP(ip) {
		c.state.Store(connRefused)
		c.ln.log.Debug("refused connection over -max-conns-per-ip", "client", ip, "limit", c.ln.maxPerIP)
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(tooManyConnsResponse)
		return errTooManyConns
	}
	c.ip = ip
	c.state.Store(connAdmitted)
	return nil
}

// lingerOnClose asks Close to finish the connection gently: send FIN, then
// read and discard what the client still sends for a while, then close.
// Closing at once with unread bytes makes the kernel send a reset, which can
// destroy the response before the client reads it.
func (c *serverConn) lingerOnClose() { c.linger.Store(true) }

func (c *serverConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.ln.open.Add(-1)
		if c.ln.maxPerIP > 0 && c.state.Load() == connAdmitted {
			c.ln.releaseIP(c.ip)
		}
		if !c.linger.Load() {
			err = c.Conn.Close()
			return
		}
		go func() {
			raw := c.Conn
			if pc, ok := raw.(*proxyproto.Conn); ok {
				raw = pc.Raw()
			}
			if cw, ok := raw.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_ = raw.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.CopyN(io.Discard, raw, lingerMaxBytes)
			_ = raw.Close()
		}()
	})
	return err
}

// addrOf returns the IP of a connection's address, IPv4-mapped addresses
// unmapped, or the zero Addr for addresses without one.
func addrOf(a net.Addr) netip.Addr {
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
