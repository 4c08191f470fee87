package main

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOversizeBodyAnswer413WhileClientKeepsSending sends a body over the
// limit over real TCP, all of it before reading, as simple clients do, and
// requires the 413 to arrive intact instead of a connection reset.
func TestOversizeBodyAnswer413WhileClientKeepsSending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startSubsystem(t, testConfig(t), ln)
	const size = 16 << 20
	block := strings.Repeat("a", 64<<10)
	for _, tt := range []struct{ header, body string }{
		{"Content-Length: " + strconv.Itoa(size), strings.Repeat(block, size/len(block))},
		{"Transfer-Encoding: chunked", chunked(strings.Split(strings.Repeat(block+"|", size/len(block)), "|")...)},
	} {
		t.Run(tt.header, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "POST /north/login HTTP/1.1\r\nHost: x\r\n"+tt.header+"\r\n\r\n"+tt.body); err != nil {
				t.Fatalf("sending the body: %v", err)
			}
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(c)); err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			want := failure("request body is larger than 65536 bytes")
			if resp.StatusCode() != 413 || string(resp.Body()) != want || !resp.ConnectionClose() {
				t.Fatalf("got %d %q (close %v), want 413 %q and Connection: close", resp.StatusCode(), resp.Body(), resp.ConnectionClose(), want)
			}
		})
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startSubsystem(t, testConfig(t, "-max-conns-per-ip", "2"), ln)
	dial := func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Make sure both held connections were accepted before the third.
	for _, c := range held {
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("held connection: %v %d", err, resp.StatusCode())
		}
	}
	resp := roundTrip(t, dial, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode() != 429 || string(resp.Body()) != tooManyConnsBody {
		t.Fatalf("third connection got %d %q, want 429", resp.StatusCode(), resp.Body())
	}
	held[0].Close()
	time.Sleep(100 * time.Millisecond) // the server notices the close
	if resp := roundTrip(t, dial, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode() != 200 {
		t.Fatalf("after a close, a new connection got %d", resp.StatusCode())
	}
}
