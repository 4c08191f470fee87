package main

import (
	"errors"
	"io"
	"testing"

	"northd/internal/config"
	"northd/internal/testdeps"
)

// TestPreforkRefusesTheMemoryStore: each child of -prefork has its own
// memory, so with -store memory a verify or logout that lands on another
// child than its login fails. northd refuses the pair at start (exit 2),
// with a line that says what to give instead.
func TestPreforkRefusesTheMemoryStore(t *testing.T) {
	for _, args := range [][]string{
		{"-prefork", "-listen", "127.0.0.1:8000"},
		{"-prefork", "-listen", "127.0.0.1:8000", "-store", "memory"},
	} {
		_, err := config.Parse(args, testdeps.NoEnv, io.Discard)
		var usage config.UsageError
		const want = "-prefork needs a shared store: each child would keep its own tokens, so a verify or logout that reaches another child would fail; give -store redis://host:port/db"
		if !errors.As(err, &usage) || err.Error() != want {
			t.Errorf("%v: got %v, want the usage error %q", args, err, want)
		}
	}
	if _, err := config.Parse([]string{"-prefork", "-listen", "127.0.0.1:8000", "-store", "redis://127.0.0.1:6379/0"}, testdeps.NoEnv, io.Discard); err != nil {
		t.Errorf("-prefork with a Redis store: %v", err)
	}
}
