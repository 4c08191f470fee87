package northd

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
// whose wrapper would hide our conn type from the error handler.
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

func newConnListener(ln net.Listener, maxPerIP int, open *atomic.Int64, log *slog.Logger) *connListener {
	return &connListener{Listener: ln, maxPerIP: maxPerIP, open: open, log: log, perIP: make(map[netip.Addr]int)}
}

func (l *connListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrOf(c.RemoteAddr())
		if l.maxPerIP > 0 && !l.admit(ip) {
			l.log.Debug("refused connection over -max-conns-per-ip", "client", ip, "limit", l.maxPerIP)
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(tooManyConnsResponse)
			_ = c.Close()
			continue
		}
		l.open.Add(1)
		return &serverConn{Conn: c, ln: l, ip: ip}, nil
	}
}

func (l *connListener) admit(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip] >= l.maxPerIP {
		return false
	}
	l.perIP[ip]++
	return true
}

func (l *connListener) release(ip netip.Addr) {
	l.open.Add(-1)
	if l.maxPerIP <= 0 {
		return
	}
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
	ln        *connListener
	ip        netip.Addr
	linger    atomic.Bool
	closeOnce sync.Once
}

// lingerOnClose asks Close to finish the connection gently: send FIN, then
// read and discard what the client still sends for a while, then close.
// Closing at once with unread bytes makes the kernel send a reset, which can
// destroy the response before the client reads it.
func (c *serverConn) lingerOnClose() { c.linger.Store(true) }

func (c *serverConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.ln.release(c.ip)
		if !c.linger.Load() {
			err = c.Conn.Close()
			return
		}
		go func() {
			if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.CopyN(io.Discard, c.Conn, lingerMaxBytes)
			_ = c.Conn.Close()
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
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}
