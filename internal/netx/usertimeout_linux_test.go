package netx

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recordingListener keeps the TCP connections it accepts, so that a test
// can read their socket options without going through the wrappers.
type recordingListener struct {
	*net.TCPListener
	accepted chan *net.TCPConn
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err == nil {
		l.accepted <- c
	}
	return c, err
}

func userTimeoutOf(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ms int
	var gerr error
	if err := raw.Control(func(fd uintptr) { ms, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return ms
}

// SetUserTimeout reaches the socket through each wrapper a stream's
// connection can be in: the Listener's, a PROXY header's, TLS's.
func TestSetUserTimeoutUnderWrappers(t *testing.T) {
	for _, c := range []struct {
		name  string
		o     ListenerOptions
		wrap  func(net.Conn) net.Conn
		first string // what the client sends first
	}{
		{"plain", ListenerOptions{}, func(c net.Conn) net.Conn { return c }, ""},
		{"PROXY", ListenerOptions{ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, func(c net.Conn) net.Conn { return c }, "PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n"},
		{"TLS", ListenerOptions{}, func(c net.Conn) net.Conn { return tls.Server(c, &tls.Config{}) }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			rec := recordingListener{inner, make(chan *net.TCPConn, 1)}
			l := NewListener(rec, c.o, slog.New(slog.DiscardHandler))
			defer l.Close()
			client, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			io.WriteString(client, c.first)
			conn, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			raw := <-rec.accepted
			if ms := userTimeoutOf(t, raw); ms != 0 {
				t.Fatalf("TCP_USER_TIMEOUT before: %d ms, want the kernel's 0", ms)
			}
			if err := SetUserTimeout(c.wrap(conn), 7500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if ms := userTimeoutOf(t, raw); ms != 7500 {
				t.Errorf("TCP_USER_TIMEOUT after: %d ms, want 7500", ms)
			}
		})
	}
}

func TestSetUserTimeoutNeedsTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := SetUserTimeout(a, time.Second); err == nil || err.Error() != "no TCP connection under *net.pipe" {
		t.Errorf("on a pipe: %v", err)
	}
}
