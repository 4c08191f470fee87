package netx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"northd/internal/testdeps"
)

// Lazy deadlines still cut off clients that would hold a connection: one
// that trickles a request, one that stays idle, one that stops reading.
// Each must be gone within its timeout plus the slack; the bound is
// generous, for a loaded machine, and there is no lower bound.
func TestLazyDeadlinesStillCutOffClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	bound := timeout + deadlineSlack + 10*time.Second
	tests := []struct {
		name string
		// hold does what the client does to the connection until the
		// server closes it, and returns once it has.
		hold func(t *testing.T, c net.Conn)
	}{
		{"trickles a request", func(t *testing.T, c net.Conn) {
			// One byte of a header every 100 ms: each read is in
			// time, the request never is.
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "))
			var got []byte
			for {
				if _, err := c.Write([]byte("a")); err != nil {
					break
				}
				b, closed := readUntilClosed(c, 100*time.Millisecond)
				got = append(got, b...)
				if closed {
					break
				}
			}
			// fasthttp closes a keep-alive connection whose next
			// request is late with no answer, or with a 408; any
			// other answer would mean it was not the deadline.
			if len(got) != 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 408 Request Timeout\r\n")) {
				t.Errorf("a trickled request got %q, want a 408 or nothing", got)
			}
		}},
		{"stays idle after a request", func(t *testing.T, c net.Conn) {
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			io.Copy(io.Discard, c) // the answer, then EOF when cut off
		}},
		{"stops reading", func(t *testing.T, c net.Conn) {
			// Pipelined requests with no reads, until the server's
			// writes block and its write deadline ends the connection.
			batch := bytes.Repeat([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1000)
			for {
				if _, err := c.Write(batch); err != nil {
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, ListenerOptions{}, io.Discard)
			// Timeouts answered 408, as northd answers them: a
			// deadline read mid-request is not always fasthttp's own
			// timeout error, which its default handler answers 408.
			addr := serve(t, l, &fasthttp.Server{ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout,
				ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
					if netErr, ok := errors.AsType[net.Error](err); ok && netErr.Timeout() {
						ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
						return
					}
					ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
				}})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc, ok := c.(*net.TCPConn); ok && strings.HasPrefix(tt.name, "stops") {
				tc.SetReadBuffer(4096) // fill up soon
			}
			c.SetDeadline(time.Now().Add(bound + time.Minute)) // the test's own safety net
			start := time.Now()
			done := make(chan struct{})
			// One whole request first, so that the connection is
			// served (and counted open) before the client holds it.
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			var first []byte
			for !bytes.HasSuffix(first, []byte("\r\n\r\nok\n")) { // one byte at a time: nothing more
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil {
					t.Fatalf("first request: %v after %q", err, first)
				}
				first = append(first, b[0])
			}
			go func() { tt.hold(t, c); close(done) }()
			testdeps.WaitFor(t, "the server to close the connection", func() bool { return l.OpenConns() == 0 })
			if took := time.Since(start); took > bound {
				t.Errorf("closed after %v, want within %v", took, bound)
			}
			c.Close()
			<-done
		})
	}
}

// readUntilClosed reads from c for up to d, and reports what it read and
// whether the peer closed c.
func readUntilClosed(c net.Conn, d time.Duration) ([]byte, bool) {
	c.SetReadDeadline(time.Now().Add(d))
	var got []byte
	var b [512]byte
	for {
		n, err := c.Read(b[:])
		got = append(got, b[:n]...)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return got, false
		}
		return got, true
	}
}

// The deadline is armed lazily: asking for one costs nothing until a read
// or write, and then a system call only when the armed one is earlier than
// asked, or later by more than the slack.
func TestLazyDeadlineArmsOnlyWhenNeeded(t *testing.T) {
	c := &countingConn{}
	var d lazyDeadline
	t0 := time.Unix(1700000000, 0)
	steps := []struct {
		ask      time.Time
		wantSets int
		armedAt  time.Time
	}{
		{t0, 1, t0.Add(deadlineSlack)},                                  // nothing armed
		{t0.Add(100 * time.Millisecond), 1, t0.Add(deadlineSlack)},      // within the slack
		{t0.Add(deadlineSlack), 1, t0.Add(deadlineSlack)},               // exactly at it
		{t0.Add(deadlineSlack + 1), 2, t0.Add(2*deadlineSlack + 1)},     // armed earlier than asked
		{t0.Add(-time.Second), 3, t0.Add(-time.Second + deadlineSlack)}, // armed later than asked by more than the slack
		{time.Time{}, 4, time.Time{}},                                   // no deadline
		{time.Time{}, 4, time.Time{}},                                   // still none
	}
	for i, st := range steps {
		d.ask(st.ask)
		if err := d.arm(c, true); err != nil {
			t.Fatal(err)
		}
		if c.sets != st.wantSets || !c.last.Equal(st.armedAt) {
			t.Fatalf("step %d: %d system calls, armed at %v; want %d, %v", i, c.sets, c.last, st.wantSets, st.armedAt)
		}
	}
}

// countingConn counts the read deadlines set on it.
type countingConn struct {
	net.Conn
	sets int
	last time.Time
}

func (c *countingConn) SetReadDeadline(t time.Time) error { c.sets++; c.last = t; return nil }
