package auth

import (
	"fmt"
	"io"
	"log/slog"
	"os"
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
