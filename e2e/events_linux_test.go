package e2e

import (
	"net"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"northd/internal/testdeps"
)

// userTimeoutOfPeer reads TCP_USER_TIMEOUT, in ms, off northd's socket
// whose peer is client's end: the server's side of client's connection,
// found among northd's open descriptors and taken into this process with
// pidfd_getfd (northd is this process's child, so it may).
func userTimeoutOfPeer(t *testing.T, n *testdeps.Northd, client net.Conn) int {
	t.Helper()
	local := client.LocalAddr().(*net.TCPAddr)
	pidfd, err := unix.PidfdOpen(n.Pid(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(n.Pid()) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			continue // closed since the listing
		}
		peer, err := unix.Getpeername(fd)
		in4, ok := peer.(*unix.SockaddrInet4)
		if err != nil || !ok || in4.Port != local.Port || !net.IP(in4.Addr[:]).Equal(local.IP) {
			unix.Close(fd)
			continue // not the connected socket sought
		}
		ms, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	t.Fatalf("no socket of northd has %v for its peer", local)
	return 0
}

// A stream's connection fails once what it wrote waits -event-write-timeout
// for its ack: the heartbeat that a vanished client never takes fits in the
// send buffer, past the write deadline, and would hold its place under the
// limits for TCP's retransmission timeout, about 15 minutes.
func TestEventStreamSocketBoundsUnackedWrites(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-write-timeout", "7s")
	addr := n.Listen[0]
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	s := streamOpened(t, "the stream", addr, token, "")
	if f, err := s.next(); err != nil || f.retry == "" {
		t.Fatalf("first block %+v %v, want the retry", f, err) // the stream is served from here
	}
	if ms := userTimeoutOfPeer(t, n, s.conn); ms != 7000 {
		t.Errorf("the stream socket's TCP_USER_TIMEOUT: %d ms, want 7000", ms)
	}
}
