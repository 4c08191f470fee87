package main

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseBearer(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	want, _ := hex.DecodeString(tok)
	tests := []struct {
		value string
		want  bearerProblem
	}{
		{"Bearer " + tok, bearerOK},
		{"bearer " + tok, bearerOK},
		{"BEARER   " + tok, bearerOK},
		{"Bearer " + strings.ToUpper(tok), bearerMalformed},
		{"Bearer " + tok[:31], bearerMalformed},
		{"Bearer " + tok + "0", bearerMalformed},
		{"Bearer " + tok[:31] + "g", bearerMalformed},
		{"Bearer " + tok + " ", bearerMalformed},
		{"Bearer 01234567-89ab-cdef-0123-456789abcdef", bearerMalformed},
		{"Bearer", bearerMalformed},
		{"Bearer ", bearerMalformed},
		{"Bearer\t" + tok, bearerNotBearer},
		{"Bearerx " + tok, bearerNotBearer},
		{"Basic YWxpY2U6c2VjcmV0", bearerNotBearer},
		{tok, bearerNotBearer},
		{"", bearerNotBearer},
		{"Bear", bearerNotBearer},
	}
	for _, tt := range tests {
		got, problem := parseBearer([]byte(tt.value))
		if problem != tt.want {
			t.Errorf("parseBearer(%q) = %q, want %q", tt.value, bearerReasons[problem], bearerReasons[tt.want])
		}
		if problem == bearerOK && string(got[:]) != string(want) {
			t.Errorf("parseBearer(%q) = %x", tt.value, got)
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
		got, problem := parseBearer([]byte(v))
		var want [16]byte
		ok := false
		if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ') {
			rest := strings.TrimLeft(v[6:], " ")
			if len(rest) == 32 && strings.ToLower(rest) == rest {
				_, err := hex.Decode(want[:], []byte(rest))
				ok = err == nil
			}
			if !ok && problem != bearerMalformed {
				t.Fatalf("parseBearer(%q) = %q, want malformed", v, bearerReasons[problem])
			}
		} else if problem != bearerNotBearer {
			t.Fatalf("parseBearer(%q) = %q, want not_bearer", v, bearerReasons[problem])
		}
		if ok && (problem != bearerOK || got != want) {
			t.Fatalf("parseBearer(%q) = %x, %q; want %x", v, got, bearerReasons[problem], want)
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"north", `"north"`},
		{"", `""`},
		{`a"b\c`, `"a\"b\\c"`},
		{"<&>", `"\u003c\u0026\u003e"`},
		{"é😀", `"é😀"`},
		{"tab\there", `"tab\there"`},
	}
	for _, tt := range tests {
		if got := string(appendJSONString([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("appendJSONString(%q) = %s, want x%s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendJSONString pins the fast path to encoding/json's output.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"north", `a"b`, "<", "\x7f", "é", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // usernames come from a body checked to be UTF-8
		}
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
