//go:build race

package testdeps

// RaceEnabled: the race detector allocates on its own, so allocation
// counts are asserted only without it (make test runs those tests again
// without -race).
const RaceEnabled = true
