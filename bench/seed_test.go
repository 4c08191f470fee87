package bench

import (
	"os"
	"strings"
	"testing"
	"unicode"
)

// seedSource is the seed as the project received it, beside the
// repository (CI lays a copy of shared/ beside its clone).
const seedSource = "../../shared/seed/000_dad61b3b2fd47fcf.txt"

// TestSeedRestoredFaithfully checks that bench/peers/seed/seed.py is the
// seed's program with only its capitals and indentation restored: with
// case and whitespace dropped, the two are the same text.
func TestSeedRestoredFaithfully(t *testing.T) {
	orig, err := os.ReadFile(seedSource)
	if os.IsNotExist(err) {
		t.Skipf("seed peer check skipped: %s is absent (the seed sits in ../shared/seed beside the repository)", seedSource)
	}
	if err != nil {
		t.Fatal(err)
	}
	restored, err := os.ReadFile("peers/seed/seed.py")
	if err != nil {
		t.Fatal(err)
	}
	want := program(t, string(orig))
	got := program(t, string(restored))
	if got != want {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("seed.py differs from the seed beyond case and whitespace at byte %d:\nseed:     %.80q\nseed.py:  %.80q", i, want[i:], got[i:])
	}
}

// program is the seed's first program (from "import json" to the first
// "server.serve_forever()"), lower-cased, without whitespace.
func program(t *testing.T, text string) string {
	t.Helper()
	start := strings.Index(text, "import json")
	end := strings.Index(strings.ToLower(text), "server.serve_forever()")
	if start < 0 || end < start {
		t.Fatal("no program from import json to server.serve_forever() found")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, text[start:end])
}
