package wire

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"testing"
	"unicode/utf8"
)

// The answers' bytes as docs/north-servers.md's wire contract shows
// them, written out again here rather than built from the package's own
// strings.
func TestAnswerBytes(t *testing.T) {
	token := [16]byte{0x0c, 0x8e, 0x4f, 0x0e, 0x2b, 0x2f, 0x4d, 0x1c, 0x9a, 0x3e, 0x5b, 0x7d, 0x9f, 0x1a, 0x2c, 0x4e}
	rejections := NewRejectionBodies(65536)
	for _, tt := range []struct{ name, got, want string }{
		{"login", string(AppendLoginOK(nil, token)), `{"code": 0, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e", "description": "success"}`},
		{"verify", string(AppendVerifyOK(nil, []byte("north-1"), netip.MustParseAddr("192.0.2.10"), 3600)), `{"code": 0, "description": "valid", "username": "north-1", "ip": "192.0.2.10", "expires_in": 3600}`},
		{"verify escaped", string(AppendVerifyOK(nil, []byte(`a"<`), netip.MustParseAddr("2001:db8::1"), 1)), `{"code": 0, "description": "valid", "username": "a\"\u003c", "ip": "2001:db8::1", "expires_in": 1}`},
		{"not JSON", string(rejections[ProblemNotJSON]), `{"code": 1, "token": "", "description": "request body is not valid JSON"}`},
		{"too large", string(rejections[ProblemBodyTooLarge]), `{"code": 1, "token": "", "description": "request body is larger than 65536 bytes"}`},
		{"wrong credentials", string(WrongCredentialsBody), `{"code": 2, "token": "", "description": "username or password is incorrect"}`},
		{"store down, token route", string(StoreDownTokenBody), `{"code": 4, "description": "the token store is unavailable; retry after the Retry-After seconds"}`},
		{"logged out", string(LoggedOutBody), `{"code": 0, "description": "logged out"}`},
		{"unknown token", string(BearerUnknown.Refusal().Body), `{"code": 2, "description": "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again"}`},
		{"unknown token challenge", string(BearerUnknown.Refusal().WWWAuthenticate), `Bearer realm="northd", error="invalid_token"`},
		{"several challenge", string(BearerSeveral.Refusal().WWWAuthenticate), `Bearer realm="northd", error="invalid_request"`},
		{"missing challenge", string(BearerMissing.Refusal().WWWAuthenticate), `Bearer realm="northd"`},
	} {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, tt.got, tt.want)
		}
	}
	if LoginOKLen != 82 {
		t.Errorf("LoginOKLen = %d, want 82", LoginOKLen)
	}
	for p := BearerMissing; p < BearerProblemCount; p++ {
		if r := p.Refusal(); (r.Status != 401) != (p == BearerSeveral) || r.Status == 0 || len(r.Body) == 0 {
			t.Errorf("%s: %d %s", p.Reason(), r.Status, r.Body)
		}
	}
	for p := ProblemEmptyBody; p < ProblemCount; p++ {
		if p.Reason() == "" || len(rejections[p]) == 0 {
			t.Errorf("problem %d has no reason or no body", p)
		}
	}
}

// The two answers built per request are appended to a buffer on the
// handler's stack: hex.AppendEncode and the rest of them allocate nothing.
func TestAnswersAllocateNothing(t *testing.T) {
	token := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	var sink byte
	if n := testing.AllocsPerRun(100, func() {
		var b [LoginOKLen]byte
		ok := AppendLoginOK(b[:0], token)
		sink ^= ok[len(ok)-1]
	}); n != 0 {
		t.Errorf("AppendLoginOK allocates %v times", n)
	}
	want := `{"code": 0, "token": "` + hex.EncodeToString(token[:]) + `", "description": "success"}`
	if got := AppendLoginOK(nil, token); string(got) != want {
		t.Errorf("AppendLoginOK = %s, want %s", got, want)
	}
	user, ip := []byte("north-7"), netip.MustParseAddr("2001:db8::7")
	if n := testing.AllocsPerRun(100, func() {
		var b [128 + 6*MaxUsernameLen]byte
		ok := AppendVerifyOK(b[:0], user, ip, 3600)
		sink ^= ok[len(ok)-1]
	}); n != 0 {
		t.Errorf("AppendVerifyOK allocates %v times", n)
	}
	_ = sink
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
		if got := string(AppendJSONString([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("AppendJSONString(%q) = %s, want x%s", tt.in, got, tt.want)
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
		if got := AppendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
