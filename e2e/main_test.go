// Package e2e runs northd as operators do: the built binary, a process of
// its own (internal/testdeps), on loopback ports, with a real Redis,
// htpasswd and Python where a test needs them. The tests see only what an
// operator or a north server sees: the answers, the admin listener's
// /metrics and listings, the log, signals and exit statuses.
//
// No test waits a fixed time for something to happen: each waits for the
// event itself (a metric, a log line, an answer), under a generous bound
// that only a hang reaches.
package e2e

import (
	"testing"

	"northd/internal/testdeps"
)

// bin is the northd binary the tests run, built once by TestMain; under
// the race detector it is built with it, so that the races these tests
// find are northd's too, not only the tests' own.
var bin string

func TestMain(m *testing.M) {
	var flags []string
	if testdeps.RaceEnabled {
		flags = append(flags, "-race")
	}
	testdeps.MainWithNorthd(m, "..", &bin, flags...)
}

// start runs northd with args until the test ends (testdeps.StartNorthd).
func start(t *testing.T, args ...string) *testdeps.Northd {
	t.Helper()
	return testdeps.StartNorthd(t, bin, args...)
}
