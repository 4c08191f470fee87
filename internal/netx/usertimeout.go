package netx

import (
	"fmt"
	"net"
	"time"

	"github.com/pires/go-proxyproto"
)

// SetUserTimeout has the kernel fail c when data written to it stays
// unacknowledged for d (TCP_USER_TIMEOUT, on Linux; elsewhere it does
// nothing, and the system's retransmission timeout, about 15 minutes,
// finds a peer that is gone).
//
// It is for connections that are written and never read, such as an event
// stream: a write to a peer that vanished (its host gone, no FIN or RST)
// still succeeds, into the socket's send buffer, so a write deadline never
// fires; with this the next write after d fails instead.
//
// c is a connection a Listener handed out, or one around it: a *tls.Conn
// (NetConn), fasthttp's hijacked conn (UnsafeConn), with or without a
// PROXY header under it.
func SetUserTimeout(c net.Conn, d time.Duration) error {
	tc, err := tcpConnOf(c)
	if err != nil {
		return err
	}
	return setUserTimeout(tc, d)
}

// tcpConnOf finds the *net.TCPConn under the wrappers c may be in, from
// the outside in; bounded, as wrappers are few.
func tcpConnOf(c net.Conn) (*net.TCPConn, error) {
	for range 8 {
		switch w := c.(type) {
		case *net.TCPConn:
			return w, nil
		case *serverConn:
			c = w.Conn
		case *proxyproto.Conn:
			c = w.Raw()
		case interface{ NetConn() net.Conn }: // *tls.Conn
			c = w.NetConn()
		case interface{ UnsafeConn() net.Conn }: // fasthttp's hijacked conn
			c = w.UnsafeConn()
		default:
			return nil, fmt.Errorf("no TCP connection under %T", c)
		}
	}
	return nil, fmt.Errorf("no TCP connection under %T: too many wrappers", c)
}
