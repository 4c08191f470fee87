package main

// The end-to-end tests run northd as a separate process, the binary that
// `go build .` makes at the repository root, as an operator runs it (see
// northd/internal/testdeps).

import (
	"testing"

	"northd/internal/testdeps"
)

// northdBin is the server binary, built once by TestMain.
var northdBin string

func TestMain(m *testing.M) { testdeps.MainWithNorthd(m, "..", &northdBin) }

// startNorthd runs northd until the test ends (testdeps.StartNorthd).
func startNorthd(tb testing.TB, args ...string) *testdeps.Northd {
	tb.Helper()
	return testdeps.StartNorthd(tb, northdBin, args...)
}
