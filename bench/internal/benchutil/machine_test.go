package benchutil

import (
	"net"
	"strconv"
	"testing"
)

func TestFirstLine(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"sh", []string{"-c", "printf '  tool v1.2  \\nsecond\\n'"}, "tool v1.2"},
		{"sh", []string{"-c", "echo 'on stderr' >&2"}, "on stderr"},
		// Some tools exit non-zero after printing their version.
		{"sh", []string{"-c", "echo 'version 3'; exit 2"}, "version 3"},
		{"sh", []string{"-c", "exit 2"}, ""},
		{"sh", []string{"-c", "true"}, ""},
		{"northd-bench-no-such-command", nil, ""},
	} {
		if got := FirstLine(c.name, c.args...); got != c.want {
			t.Errorf("FirstLine(%s %q) = %q, want %q", c.name, c.args, got, c.want)
		}
	}
}

func TestFreePortIsFreeOnLoopback(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort() = %d, not a port", port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	ln.Close()
}
