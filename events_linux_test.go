package main

import (
	"net"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// userTimeoutOfPeer reads TCP_USER_TIMEOUT, in ms, off this process's
// socket whose peer is client's end: the server's side of client's
// connection, found among the open descriptors.
func userTimeoutOfPeer(t *testing.T, client net.Conn) int {
	t.Helper()
	local := client.LocalAddr().(*net.TCPAddr)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			continue // not a connected socket
		}
		in4, ok := peer.(*unix.SockaddrInet4)
		if !ok || in4.Port != local.Port || !net.IP(in4.Addr[:]).Equal(local.IP) {
			continue
		}
		ms, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	t.Fatalf("no socket of this process has %v for its peer", local)
	return 0
}

// A stream's connection fails once what it wrote waits -event-write-timeout
// for its ack: the heartbeat that a vanished client never takes fits in the
// send buffer, past the write deadline, and would hold its place under the
// limits for TCP's retransmission timeout, about 15 minutes.
func TestEventStreamSocketBoundsUnackedWrites(t *testing.T) {
	listen, _, _, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-write-timeout", "7s")
	addr := listen[0]
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	s, status, body := openStream(t, addr, token, "")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if f, err := s.next(); err != nil || f.retry == "" {
		t.Fatalf("first block %+v %v, want the retry", f, err) // the stream is served from here
	}
	if ms := userTimeoutOfPeer(t, s.conn); ms != 7000 {
		t.Errorf("the stream socket's TCP_USER_TIMEOUT: %d ms, want 7000", ms)
	}
}
