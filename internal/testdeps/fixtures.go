package testdeps

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Hashes of "secret" made outside northd: bcrypt by htpasswd -nbB -C 4
// (Apache's $2y$; bcrypt's minor versions a, b and y hash alike); argon2id by
// the reference argon2 command line (echo -n secret | argon2 saltsaltsalt
// -id -t 1 -m 3 -p 1 -e).
const (
	Bcrypt2ySecret  = `$2y$04$vgdcp5bS5tKtwIcHpEWFDO0FgL1/SnStQ2zAcgz.Bz5t10mk6MtxO`
	Argon2idSecret  = `$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`
	TestUsersHeader = "# users for tests\n\n"
)

// WriteUsersFile writes a users file of content for the test, and returns
// its path.
func WriteUsersFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WantAllocs fails the test when f does not allocate want times per run.
// Under the race detector, which allocates on its own, it runs f and skips
// the rest of the test, saying so; make test counts them again without it
// (go test -run Allocat ./...).
func WantAllocs(t *testing.T, what string, want float64, f func()) {
	t.Helper()
	n := testing.AllocsPerRun(200, f)
	if RaceEnabled {
		t.Skipf("%s: %v allocations per run, not counted under the race detector; make test counts them without it (go test -run Allocat ./...)", what, n)
	}
	if n != want {
		t.Errorf("%s allocates %v times per run, want %v", what, n, want)
	}
}

// ReadRefusal sends a request on a new connection to addr and reads
// everything the server writes before it closes the connection; a refusal
// docs/openapi.yaml does not describe fails the test (CheckRawAnswer).
func ReadRefusal(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	// The server closes without reading the request, so its close may
	// come as a reset, after the answer.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %q, then %v", got, err)
	}
	CheckRawAnswer(t, "", got) // written before any request was read
	return string(got)
}

// DialKept connects to addr and keeps the connection open until the test
// ends.
func DialKept(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FreeAddr is a loopback address nothing listens on: a port the kernel
// handed out a moment ago and that was let go at once. A connection to it
// is refused, and a listener may take it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
