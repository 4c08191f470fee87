package benchutil

import (
	"bufio"
	"bytes"
	"net"
	"os/exec"
	"strings"
)

// FirstLine is the first line of a command's output (stdout and stderr),
// trimmed, or "" when it printed nothing or could not run: tools print
// their versions on either, and some exit non-zero doing it.
func FirstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}

// FreePort asks the kernel for a free loopback port. Another process can
// take it before the server binds; the caller notices (the server exits,
// or something else answers) and tries again on another.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
