package main

import (
	"os"
	"os/exec"
	"testing"
)

// needCommand returns the path of a program a test needs. Where it is
// missing the test is skipped, saying how to install it; under CI=true it
// fails instead, so that CI cannot pass without its real parts.
func needCommand(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed (apt-get install " + debianPackage + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run this test")
	}
	t.Skip(msg + "; skipping")
	return ""
}
