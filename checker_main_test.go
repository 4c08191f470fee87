package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"northd/internal/auth"
)

// TestMain lets this test binary be the password checker too: northd
// started by a test (run with -users) starts the program it runs, which
// here is the test binary, with the hidden subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == auth.CheckPasswordsCommand {
		if err := run(context.Background(), os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "northd:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
