package auth

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// TestMain lets this test binary be the password checker too: New starts
// the program it runs, which here is the test binary, with the hidden
// subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == CheckPasswordsCommand {
		if err := RunCheckPasswords(os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "northd:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Hashes of "secret" made outside northd: bcrypt by htpasswd -nbB -C 4
// (Apache's $2y$; bcrypt's minor versions a, b and y hash alike); argon2id by
// the reference argon2 command line (echo -n secret | argon2 saltsaltsalt
// -id -t 1 -m 3 -p 1 -e).
const (
	bcrypt2ySecret  = `$2y$04$vgdcp5bS5tKtwIcHpEWFDO0FgL1/SnStQ2zAcgz.Bz5t10mk6MtxO`
	argon2idSecret  = `$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`
	testUsersHeader = "# users for tests\n\n"
)

func writeUsersFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testOptions are northd's defaults for the users file at path.
func testOptions(path string) Options {
	return Options{UsersFile: path, CacheTTL: 10 * time.Minute, MaxAddrFailures: 10, MaxUserFailures: 50, FailureWindow: time.Minute, IPv6Prefix: 64}
}

// newTestAuthenticator is an Authenticator over o, with its checker
// stopped when the test ends.
func newTestAuthenticator(t testing.TB, o Options, set *metrics.Set, log *slog.Logger) *Authenticator {
	t.Helper()
	a, err := New(o, set, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// discardLog is a logger for tests that do not read the log.
func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pid is the running child's process id.
func (c *passwordChecker) pid() int {
	if child, ok := c.running.Load().(*checkerChild); ok {
		return child.cmd.Process.Pid
	}
	return 0
}

// stopChild stops pid (SIGSTOP) until the test ends, when it is killed
// should the test have failed with it stopped.
func stopChild(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
}

// The tests named *Allocat* hold the login's path to 0 allocations. Under
// the race detector they run, and then skip saying that they did not
// count; make test runs them again without it.

// wantAllocs fails the test when f does not allocate want times per run.
// Under the race detector, which allocates on its own, it runs f and skips
// the rest of the test, saying so.
func wantAllocs(t *testing.T, what string, want float64, f func()) {
	t.Helper()
	n := testing.AllocsPerRun(200, f)
	if raceEnabled {
		t.Skipf("%s: %v allocations per run, not counted under the race detector; make test counts them without it (go test -run Allocat ./internal/auth)", what, n)
	}
	if n != want {
		t.Errorf("%s allocates %v times per run, want %v", what, n, want)
	}
}
