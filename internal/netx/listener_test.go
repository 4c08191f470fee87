package netx

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"northd/internal/testdeps"
)

// listen wraps a new loopback listener in a Listener with o, logging to
// logs at debug level.
func listen(t *testing.T, o ListenerOptions, logs io.Writer) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return NewListener(ln, o, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// serve serves l until the test ends with srv (fasthttp's defaults when
// nil), whose handler answers every request 200 "ok\n", and returns l's
// address.
func serve(t *testing.T, l *Listener, srv *fasthttp.Server) string {
	t.Helper()
	if srv == nil {
		srv = new(fasthttp.Server)
	}
	srv.Handler = func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok\n") }
	srv.Concurrency = FasthttpConcurrency(l.maxConns)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return l.Addr().String()
}

// connsFrom reports how many admitted connections ip has open; it counts
// only under MaxConnsPerIP.
func (l *Listener) connsFrom(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perIP[ClientKey(ip, l.ipv6Prefix)]
}

// get sends GET / on c after prefix (a PROXY header, say) and returns the
// answer's status. It fails the test when no answer can be read.
func get(t *testing.T, c net.Conn, prefix string) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	if _, err := io.WriteString(c, prefix+"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("sending a request: %v", err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading the answer to a request after %q: %v", prefix, err)
	}
	return resp.StatusCode()
}

// A connection over MaxConnsPerIP is answered 429, closed and counted; it
// takes no place under the limit, and a closed connection gives its place
// back.
func TestMaxConnsPerIP(t *testing.T) {
	l := listen(t, ListenerOptions{MaxConnsPerIP: 2, IPv6Prefix: 64, AnswerRefusals: true}, io.Discard)
	addr := serve(t, l, nil)
	held := []net.Conn{testdeps.DialKept(t, addr), testdeps.DialKept(t, addr)}
	for i, c := range held {
		if st := get(t, c, ""); st != 200 {
			t.Fatalf("held connection %d: status %d", i, st)
		}
	}

	const want = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: 64\r\n\r\n" +
		"too many connections from your address; reuse the ones you have\n"
	if got := testdeps.ReadRefusal(t, addr); got != want {
		t.Fatalf("third connection got\n%q\nwant\n%q", got, want)
	}
	if perIP, maxConns := l.Refusals(RefusedPerIP), l.Refusals(RefusedMaxConns); perIP != 1 || maxConns != 0 {
		t.Errorf("refusals: %d over MaxConnsPerIP, %d over MaxConns; want 1 and 0", perIP, maxConns)
	}
	localhost := netip.MustParseAddr("127.0.0.1")
	testdeps.WaitFor(t, "the refused connection to close", func() bool { return l.OpenConns() == 2 })
	if n := l.connsFrom(localhost); n != 2 {
		t.Errorf("127.0.0.1 holds %d places, want 2: the refused connection took one", n)
	}

	held[0].Close()
	testdeps.WaitFor(t, "the server to notice the close", func() bool { return l.connsFrom(localhost) == 1 })
	if st := get(t, testdeps.DialKept(t, addr), ""); st != 200 {
		t.Fatalf("after a close, a new connection got %d", st)
	}
}

// TestRefusalAtDebugLevelDoesNotWaitForTheProxyHeader: a connection from a
// trusted proxy refused over MaxConns is logged at debug level with the
// proxy's address, in the accept loop, without waiting for a PROXY header
// that may never come. Here the refused connection never sends one and
// stays open, and the header's read timeout is an hour: the next refused
// connection must still be answered meanwhile.
func TestRefusalAtDebugLevelDoesNotWaitForTheProxyHeader(t *testing.T) {
	logs := new(testdeps.SyncBuffer)
	l := listen(t, ListenerOptions{
		MaxConns:           1,
		ProxyProtocolFrom:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		ProxyHeaderTimeout: time.Hour,
		AnswerRefusals:     true,
	}, logs)
	addr := serve(t, l, nil)
	if st := get(t, testdeps.DialKept(t, addr), "PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n"); st != 200 {
		t.Fatalf("held connection: status %d", st)
	}
	silent := testdeps.DialKept(t, addr) // refused; sends nothing, ever
	if got := testdeps.ReadRefusal(t, addr); got != string(overloadedResponse) {
		t.Fatalf("the connection after a silent one got\n%q\nwant\n%q", got, overloadedResponse)
	}
	// The silent one, still open on our side, was answered too.
	silent.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	if got, err := io.ReadAll(silent); string(got) != string(overloadedResponse) {
		t.Fatalf("the silent connection got %q, %v", got, err)
	}
	want := `level=DEBUG msg="refused connection over -max-conns" peer=` + silent.LocalAddr().String() + " limit=1\n"
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs)
	}
	if n := l.Refusals(RefusedMaxConns); n != 2 {
		t.Errorf("%d refusals over MaxConns counted, want 2", n)
	}
}

// A failed accept is retried only when it passes with time; a closed
// listener of any kind (fasthttp's in-memory one says so in words, not
// with net.ErrClosed) ends serving instead of looping.
func TestAcceptRetryable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{fasthttputil.ErrInmemoryListenerClosed, false},
		{errors.New("anything else"), false},
	} {
		if got := acceptRetryable(tt.err); got != tt.want {
			t.Errorf("acceptRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
