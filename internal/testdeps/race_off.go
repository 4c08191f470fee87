//go:build !race

package testdeps

const RaceEnabled = false
