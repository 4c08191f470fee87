// Package netx is northd's connection layer: the listener that counts,
// limits and refuses connections and closes them gently, the lazy
// deadlines of the connections it hands out, and who the client is (its
// address from a PROXY header or a trusted proxy's header, and the key
// that stands for it in per-client limits).
//
// It knows nothing of northd's flags, routes or metrics: its owners map
// their configuration to ListenerOptions and read its counts, so that the
// connection layer can change, and be tested, on its own.
package netx

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

	"github.com/VictoriaMetrics/metrics"
	"github.com/pires/go-proxyproto"
)

const (
	// A connection closed after LingerOnClose is drained for at most
	// this long and this many bytes, so the client reads the answer
	// instead of a reset caused by the body it was still sending.
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

// ListenerOptions are what a Listener enforces, each from the flag named.
// The zero value limits nothing and answers no refusal.
type ListenerOptions struct {
	// MaxConns is the most connections open at once (-max-conns); the
	// next is refused, with 503 when AnswerRefusals. 0: no limit.
	MaxConns int
	// MaxConnsPerIP is the most connections open at once from one
	// client (-max-conns-per-ip), keyed by ClientKey; the next is
	// refused, with 429 when AnswerRefusals. 0: no limit.
	MaxConnsPerIP int
	// IPv6Prefix is how many leading bits of an IPv6 address name one
	// client under MaxConnsPerIP (-ipv6-prefix); see ClientKey.
	IPv6Prefix int
	// ProxyProtocolFrom are the peers whose connections must start with
	// a PROXY header (-proxy-protocol-from).
	ProxyProtocolFrom []netip.Prefix
	// ProxyHeaderTimeout bounds the wait for a PROXY header; 0 means
	// go-proxyproto's default, 10 s. northd gives -read-timeout.
	ProxyHeaderTimeout time.Duration
	// AnswerRefusals: a refused connection is answered 503 or 429 before
	// it is closed. Not under TLS, where the answer would need the
	// handshake first and is not worth it to a connection being refused:
	// a plain-text answer would only garble the client's handshake.
	AnswerRefusals bool
	// LingerTimeout is how long a connection closed after LingerOnClose
	// is drained at most; 0 means 2 s.
	LingerTimeout time.Duration
}

// Listener wraps a subsystem's listener: it counts open connections,
// enforces MaxConns and MaxConnsPerIP with answers of its own, and hands
// out conns that can be closed gently (LingerOnClose).
//
// It stands in for fasthttp's limits. fasthttp's MaxConnsPerIP wrapper would
// hide our conn type from the error handler and would count a proxy's
// address instead of the client's. Over its Concurrency fasthttp writes a
// 503 of its own, without Cache-Control: no-store and with no way for northd
// to count it; so Listener refuses the connection first, and the server's
// Concurrency is set above MaxConns (FasthttpConcurrency) as a backstop
// that is not reached.
type Listener struct {
	inner          net.Listener
	maxConns       int // 0: no limit
	maxPerIP       int // 0: no limit
	ipv6Prefix     int // how perIP keys IPv6 clients
	lingerTimeout  time.Duration
	answerRefusals bool
	log            *slog.Logger
	open           atomic.Int64

	// refused counts the connections turned away, by reason.
	refused [refusalCount]atomic.Uint64

	mu    sync.Mutex
	perIP map[netip.Addr]int // by ClientKey
}

// Refusal is why a Listener turned a connection away.
type Refusal uint8

const (
	RefusedMaxConns Refusal = iota // over MaxConns: 503
	RefusedPerIP                   // over MaxConnsPerIP: 429
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

// FasthttpConcurrency is the fasthttp.Server Concurrency for a server on a
// Listener whose MaxConns is maxConns. It must stay above maxConns: a
// connection's Close, which lets the Listener admit the next one, comes a
// moment before fasthttp releases the worker that served it, and fasthttp
// answers with its own 503 when no worker is free.
func FasthttpConcurrency(maxConns int) int {
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

// NewListener wraps ln, logging to log. Connections from
// o.ProxyProtocolFrom peers must start with a PROXY header (v1 or v2),
// whose source address then stands for the peer's; other peers'
// connections are taken as they are, so a PROXY header from them is just
// a malformed request.
func NewListener(ln net.Listener, o ListenerOptions, log *slog.Logger) *Listener {
	if len(o.ProxyProtocolFrom) > 0 {
		trusted := trustedProxies(o.ProxyProtocolFrom)
		ln = &proxyproto.Listener{
			Listener: ln,
			ConnPolicy: func(p proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				if trusted.trusts(AddrOf(p.Upstream)) {
					return proxyproto.REQUIRE, nil
				}
				return proxyproto.SKIP, nil
			},
			ReadHeaderTimeout: o.ProxyHeaderTimeout,
		}
	}
	lingerTimeout := o.LingerTimeout
	if lingerTimeout == 0 {
		lingerTimeout = defaultLingerTimeout
	}
	return &Listener{
		inner:          ln,
		maxConns:       o.MaxConns,
		maxPerIP:       o.MaxConnsPerIP,
		ipv6Prefix:     o.IPv6Prefix,
		lingerTimeout:  lingerTimeout,
		answerRefusals: o.AnswerRefusals,
		log:            log,
		perIP:          make(map[netip.Addr]int),
	}
}

// Addr is the address of the wrapped listener.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the wrapped listener; connections already handed out stay
// open.
func (l *Listener) Close() error { return l.inner.Close() }

// Accept returns the next connection within MaxConns; those over it are
// refused and closed here. It returns an error only once the listener
// is closed: fasthttp ends its server on any accept error, and "too many
// open files" (EMFILE, ENFILE) and the like pass once connections close.
// Those are logged and retried after a pause, 5 ms doubling to 1 s, as
// net/http does, so that a full descriptor table cannot spin the loop.
func (l *Listener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.inner.Accept()
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

// OpenConns reports how many of the connections Accept handed out are
// open. A lingering one counts until its socket is closed, as it does
// against MaxConns.
func (l *Listener) OpenConns() int64 { return l.open.Load() }

// Refusals reports how many connections were turned away for r, answered
// or not: they are counted here because no request of theirs reaches the
// server.
func (l *Listener) Refusals(r Refusal) uint64 { return l.refused[r].Load() }

// RegisterMetrics adds the listener's gauges to set under label
// (subsystem="NAME"), read at scrape time: its open connections, and the
// connections it refused. Those got an answer too, so they are requests
// like any other to whoever counts answers (a load balancer does), under
// route="refused": 503 over MaxConns, 429 over MaxConnsPerIP; both series
// are there from the start.
func (l *Listener) RegisterMetrics(set *metrics.Set, label string) {
	set.NewGauge(`northd_open_connections{`+label+`}`, func() float64 { return float64(l.OpenConns()) })
	for _, r := range []struct {
		reason Refusal
		status string
	}{{RefusedMaxConns, "503"}, {RefusedPerIP, "429"}} {
		set.NewGauge(`northd_requests_total{`+label+`,route="refused",status="`+r.status+`"}`, func() float64 { return float64(l.Refusals(r.reason)) })
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

// refuseOverMaxConns answers c with 503 (when it answers refusals) and
// closes it. It runs in the accept loop, so it reads nothing, not even a
// PROXY header.
func (l *Listener) refuseOverMaxConns(c net.Conn) {
	l.refused[RefusedMaxConns].Add(1)
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

func (l *Listener) admitIP(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip] >= l.maxPerIP {
		return false
	}
	l.perIP[ip]++
	return true
}

func (l *Listener) releaseIP(ip netip.Addr) {
	l.mu.Lock()
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

// serverConn is a connection accepted by Listener.
type serverConn struct {
	net.Conn
	ln *Listener

	// The client address is learned on the first Read, in the
	// connection's own goroutine: with PROXY protocol that means reading
	// the header, which must not hold up the accept loop.
	state     atomic.Int32 // connNew, connAdmitted or connRefused
	ip        netip.Addr   // its ClientKey; written before state becomes connAdmitted
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
	ip := AddrOf(c.Conn.RemoteAddr())
	key := ClientKey(ip, c.ln.ipv6Prefix)
	if c.ln.maxPerIP > 0 && !c.ln.admitIP(key) {
		c.state.Store(connRefused)
		c.ln.refused[RefusedPerIP].Add(1)
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

// LingerOnClose asks c's Close to finish the connection gently: send FIN,
// then read and discard what the client still sends for a while
// (ListenerOptions.LingerTimeout, 64 MiB at most), then close. Closing at
// once with unread bytes makes the kernel send a reset, which can destroy
// the response before the client reads it.
//
// c is a connection a Listener handed out, or one around it that tells
// what it wraps with NetConn, as a *tls.Conn does: the server's handler
// sees only a net.Conn. Any other c closes as it would have.
func LingerOnClose(c net.Conn) {
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = w.NetConn()
	}
	if sc, ok := c.(*serverConn); ok {
		sc.linger.Store(true)
	}
}

// Close closes the connection, or starts its lingering close. It counts
// against MaxConns and MaxConnsPerIP until its socket is closed, so that
// lingering connections cannot hold descriptors beyond the limits.
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
