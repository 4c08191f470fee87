package wire

import (
	"strconv"
	"testing"
)

// The one hex digit decoder serves the bearer token, lowercase only, and
// JSON's \u escapes, either case: every byte is checked against strconv.
func TestHexDigits(t *testing.T) {
	for c := 0; c < 256; c++ {
		want, err := strconv.ParseUint(string(rune(c)), 16, 8)
		isHex := err == nil && c < 0x80
		v, ok := lowerHexDigit(byte(c))
		if wantOK := isHex && !('A' <= c && c <= 'F'); ok != wantOK || (ok && uint64(v) != want) {
			t.Errorf("lowerHexDigit(%q) = %d, %v", rune(c), v, ok)
		}
		// The byte in each place of a \u escape, the others zeros.
		for i := range 4 {
			b := []byte("0000")
			b[i] = byte(c)
			r, ok := hex4(b)
			if ok != isHex || (ok && uint64(r) != want<<(4*(3-i))) {
				t.Errorf("hex4(%q) = %#x, %v", b, r, ok)
			}
		}
	}
}
