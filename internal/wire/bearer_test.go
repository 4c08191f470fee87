package wire

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	want, _ := hex.DecodeString(tok)
	tests := []struct {
		value string
		want  BearerProblem
	}{
		{"Bearer " + tok, BearerOK},
		{"bearer " + tok, BearerOK},
		{"BEARER   " + tok, BearerOK},
		{"Bearer " + strings.ToUpper(tok), BearerMalformed},
		{"Bearer " + tok[:31], BearerMalformed},
		{"Bearer " + tok + "0", BearerMalformed},
		{"Bearer " + tok[:31] + "g", BearerMalformed},
		{"Bearer " + tok + " ", BearerMalformed},
		{"Bearer 01234567-89ab-cdef-0123-456789abcdef", BearerMalformed},
		{"Bearer", BearerMalformed},
		{"Bearer ", BearerMalformed},
		{"Bearer\t" + tok, BearerNotBearer},
		{"Bearerx " + tok, BearerNotBearer},
		{"Basic YWxpY2U6c2VjcmV0", BearerNotBearer},
		{tok, BearerNotBearer},
		{"", BearerNotBearer},
		{"Bear", BearerNotBearer},
	}
	for _, tt := range tests {
		got, problem := ParseBearer([]byte(tt.value))
		if problem != tt.want {
			t.Errorf("ParseBearer(%q) = %q, want %q", tt.value, problem.Reason(), tt.want.Reason())
		}
		if problem == BearerOK && string(got[:]) != string(want) {
			t.Errorf("ParseBearer(%q) = %x", tt.value, got)
		}
	}
}

// FuzzParseBearer checks the parser against a plain statement of the
// format: the scheme in any case, one or more spaces, then exactly 32
// lowercase hex digits, which encoding/hex decodes to the token.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer 0123456789abcdef0123456789abcdef", "bearer  00", "Basic x", "", "Bearer", "BeArEr 0123456789ABCDEF0123456789abcdef"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, problem := ParseBearer([]byte(v))
		var want [16]byte
		ok := false
		if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ') {
			rest := strings.TrimLeft(v[6:], " ")
			if len(rest) == 32 && strings.ToLower(rest) == rest {
				_, err := hex.Decode(want[:], []byte(rest))
				ok = err == nil
			}
			if !ok && problem != BearerMalformed {
				t.Fatalf("ParseBearer(%q) = %q, want malformed", v, problem.Reason())
			}
		} else if problem != BearerNotBearer {
			t.Fatalf("ParseBearer(%q) = %q, want not_bearer", v, problem.Reason())
		}
		if ok && (problem != BearerOK || got != want) {
			t.Fatalf("ParseBearer(%q) = %x, %q; want %x", v, got, problem.Reason(), want)
		}
	})
}
