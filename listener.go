package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

const (
	// A connection closed after a 413 is drained for at most this long and
	// this many bytes, so the client reads the answer instead of a reset
	// caused by the body it was still sending.
	defaultLingerTimeout = 2 * time.Second
	lingerMaxBytes       = 64 << 20

	// refusalWriteTimeout bounds writing a refusal. It is written to a
	// connection that has sent at most one request, into an empty socket
	// buffer, so in practice the write never waits.
	refusalWriteTimeout = time.Second

	// The pause after a failed accept doubles from minAcceptPause up to
	// maxAcceptPause.
	minAcceptPause = 5 * time.Millisecond
	maxAcceptPause = time.Second
)

// connListener wraps a subsystem's listener: it counts open connections,
// enforces -max-conns and -max-conns-per-ip with answers of its own, and
// hands out conns that can be closed gently.
//
// It stands in for fasthttp's limits. fasthttp's MaxConnsPerIP wrapper would
// hide our conn type from the error handler and would count a proxy's
// address instead of the client's. Over its Concurrency fasthttp writes a
// 503 of its own, without Cache-Control: no-store and with no way for northd
// to count it; so connListener refuses the connection first, and the
// server's Concurrency is set above -max-conns (fasthttpConcurrency) as a
// backstop that is not reached.
type connListener struct {
	net.Listener
	maxConns      int // 0: no limit
	maxPerIP      int // 0: no limit
	ipv6Prefix    int // -ipv6-prefix: how perIP keys IPv6 clients
	lingerTimeout time.Duration
	// answerRefusals: a refused connection is answered 503 or 429 before
	// it is closed; not under TLS, where the answer would need the
	// handshake first and is not worth it to a connection being refused.
	answerRefusals bool
	log            *slog.Logger
	open           *atomic.Int64

	// refused counts the connections turned away, by reason.
	refused [refusalCount]atomic.Uint64

	mu    sync.Mutex
	perIP map[netip.Addr]int // by clientKey
}

// refusal is why connListener turned a connection away.
type refusal uint8

const (
	refusedMaxConns refusal = iota // over -max-conns: 503
	refusedPerIP                   // over -max-conns-per-ip: 429
	refusalCount
)

const (
	tooManyConnsBody = "too many connections from your address; reuse the ones you have\n"
	overloadedBody   = "too many connections to this server; try again later\n"
)

var (
	tooManyConnsResponse = []byte("HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: " +
		strconv.Itoa(len(tooManyConnsBody)) + "\r\n\r\n" + tooManyConnsBody)
	overloadedResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: " +
		strconv.Itoa(len(overloadedBody)) + "\r\n\r\n" + overloadedBody)
)

// fasthttpConcurrency is the fasthttp.Server Concurrency for a subsystem
// whose connListener enforces maxConns. It must stay above maxConns: a
// connection's Close, which lets connListener admit the next one, comes a
// moment before fasthttp releases the worker that served it, and fasthttp
// answers with its own 503 when no worker is free.
func fasthttpConcurrency(maxConns int) int {
	if maxConns > (math.MaxInt32-64)/2 {
		return math.MaxInt32
	}
	return 2*maxConns + 64
}

// errTooManyConns ends a connection refused over -max-conns-per-ip, after
// its 429. Like every error admit returns it wraps net.ErrClosed, which
// tells fasthttp that the server closed the connection itself, so it does
// not write (and count) an error answer of its own after ours.
var errTooManyConns = fmt.Errorf("too many connections from one client address: %w", net.ErrClosed)

// newConnListener wraps ln. Connections from -proxy-protocol-from peers
// must start with a PROXY header (v1 or v2), whose source address then
// stands for the peer's; other peers' connections are taken as they are,
// so a PROXY header from them is just a malformed request.
func newConnListener(ln net.Listener, cfg config, open *atomic.Int64, log *slog.Logger) *connListener {
	if len(cfg.ProxyProtocolFrom) > 0 {
		trusted := trustedProxies(cfg.ProxyProtocolFrom)
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
	return &connListener{
		Listener:       ln,
		maxConns:       cfg.MaxConns,
		maxPerIP:       cfg.MaxConnsPerIP,
		ipv6Prefix:     cfg.IPv6Prefix,
		lingerTimeout:  defaultLingerTimeout,
		answerRefusals: cfg.TLSCert == "",
		open:           open,
		log:            log,
		perIP:          make(map[netip.Addr]int),
	}
}

// Accept returns the next connection within -max-conns; those over it are
// answered 503 and closed here. It returns an error only once the listener
// is closed: fasthttp ends its server on any accept error, and "too many
// open files" (EMFILE, ENFILE) and the like pass once connections close.
// Those are logged and retried after a pause, 5 ms doubling to 1 s, as
// net/http does, so that a full descriptor table cannot spin the loop.
func (l *connListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil && !acceptRetryable(err) {
			return nil, err
		}
		if err != nil {
			pause = min(max(2*pause, minAcceptPause), maxAcceptPause)
			l.log.Error("cannot accept a connection; retrying", "listen", l.Addr().String(), "err", err, "retry_in", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		// Only the server's accept loop adds to open, so the check and
		// the increment cannot be overtaken.
		if l.maxConns > 0 && l.open.Load() >= int64(l.maxConns) {
			l.refuseOverMaxConns(c)
			continue
		}
		l.open.Add(1)
		return &serverConn{Conn: c, ln: l}, nil
	}
}

// acceptRetryable reports whether a failed accept passes with time: the
// descriptor table or kernel memory full, or a connection reset before it
// was accepted. Anything else (the listener closed, above all) ends
// serving.
func acceptRetryable(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// refuseOverMaxConns answers c with 503 (without TLS) and closes it. It
// runs in the accept loop, so it reads nothing, not even a PROXY header.
func (l *connListener) refuseOverMaxConns(c net.Conn) {
	l.refused[refusedMaxConns].Add(1)
	// Unwrapped first: the PROXY conn's RemoteAddr and Write would wait
	// for its header, holding up every connection behind this one.
	if pc, ok := c.(*proxyproto.Conn); ok {
		c = pc.Raw()
	}
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("refused connection over -max-conns", "peer", c.RemoteAddr().String(), "limit", l.maxConns)
	}
	if l.answerRefusals {
		_ = c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		_, _ = c.Write(overloadedResponse)
	}
	_ = c.Close()
}

// refusals reports how many connections were turned away for r.
func (l *connListener) refusals(r refusal) uint64 { return l.refused[r].Load() }

// connsFrom reports how many admitted connections ip has open; it counts
// only under -max-conns-per-ip.
func (l *connListener) connsFrom(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perIP[clientKey(ip, l.ipv6Prefix)]
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
	ip        netip.Addr   // its clientKey; written before state becomes connAdmitted
	linger    atomic.Bool
	closeOnce sync.Once

	// What fasthttp asks for, armed lazily (deadlines.go).
	readDeadline, writeDeadline lazyDeadline
}

func (c *serverConn) SetDeadline(t time.Time) error {
	c.readDeadline.ask(t)
	c.writeDeadline.ask(t)
	return nil
}

func (c *serverConn) SetReadDeadline(t time.Time) error  { c.readDeadline.ask(t); return nil }
func (c *serverConn) SetWriteDeadline(t time.Time) error { c.writeDeadline.ask(t); return nil }

func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.writeDeadline.arm(c.Conn, false); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

const (
	connNew int32 = iota
	connAdmitted
	connRefused
)

func (c *serverConn) Read(p []byte) (int, error) {
	if err := c.readDeadline.arm(c.Conn, true); err != nil {
		return 0, err
	}
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
		// connection before anything else is read from it. Nothing can
		// be written to it either, so nothing is.
		if _, err := pc.Read(nil); err != nil {
			if c.ln.log.Enabled(context.Background(), slog.LevelDebug) {
				c.ln.log.Debug("closed a connection without a valid PROXY header", "peer", pc.Raw().RemoteAddr().String(), "err", err)
			}
			return fmt.Errorf("reading the PROXY header: %v: %w", err, net.ErrClosed)
		}
	}
	ip := addrOf(c.Conn.RemoteAddr())
	key := clientKey(ip, c.ln.ipv6Prefix)
	if c.ln.maxPerIP > 0 && !c.ln.admitIP(key) {
		c.state.Store(connRefused)
		c.ln.refused[refusedPerIP].Add(1)
		if c.ln.log.Enabled(context.Background(), slog.LevelDebug) {
			c.ln.log.Debug("refused connection over -max-conns-per-ip", "client", ip.String(), "limit", c.ln.maxPerIP)
		}
		if c.ln.answerRefusals {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
			_, _ = c.Conn.Write(tooManyConnsResponse)
		}
		return errTooManyConns
	}
	c.ip = key
	c.state.Store(connAdmitted)
	return nil
}

// lingerOnClose asks Close to finish the connection gently: send FIN, then
// read and discard what the client still sends for a while, then close.
// Closing at once with unread bytes makes the kernel send a reset, which can
// destroy the response before the client reads it.
func (c *serverConn) lingerOnClose() { c.linger.Store(true) }

// Close closes the connection, or starts its lingering close. It counts
// against -max-conns and -max-conns-per-ip until its socket is closed, so
// that lingering connections cannot hold descriptors beyond the limits.
func (c *serverConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		if !c.linger.Load() {
			err = c.Conn.Close()
			c.release()
			return
		}
		go func() {
			defer c.release()
			raw := c.Conn
			if pc, ok := raw.(*proxyproto.Conn); ok {
				raw = pc.Raw()
			}
			if cw, ok := raw.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_ = raw.SetReadDeadline(time.Now().Add(c.ln.lingerTimeout))
			_, _ = io.CopyN(io.Discard, raw, lingerMaxBytes)
			_ = raw.Close()
		}()
	})
	return err
}

// release gives back the connection's place under the limits, once its
// socket is closed.
func (c *serverConn) release() {
	if c.ln.maxPerIP > 0 && c.state.Load() == connAdmitted {
		c.ln.releaseIP(c.ip)
	}
	c.ln.open.Add(-1)
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
