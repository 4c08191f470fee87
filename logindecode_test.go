package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLoginDecode(t *testing.T) {
	tests := []struct {
		body     string
		want     loginProblem
		username string
		ip       string
	}{
		{`{"username":"north","password":"pw","ip":"192.0.2.1"}`, loginOK, "north", "192.0.2.1"},
		{" \t\r\n{\"username\" : \"n\" , \"password\":\"p\"}\n", loginOK, "n", ""},
		{`{"username":"a\"b\\c\/\u00e9\ud83d\ude00\ud800","password":"p"}`, loginOK, "a\"b\\c/é😀\uFFFD", ""},
		{`{"\u0075sername":"escaped key","password":"p"}`, loginOK, "escaped key", ""},
		{`{"username":"first","username":"last","password":"p"}`, loginOK, "last", ""},
		{`{"username":"n","password":"p","ip":"2001:db8::1"}`, loginOK, "n", "2001:db8::1"},
		{`{"username":"n","password":"p","ip":"::ffff:10.1.2.3"}`, loginOK, "n", "10.1.2.3"},
		{`{"username":"n","password":"p","x":{"y":[true,false,null,-0.5e+10,"s"]}}`, loginOK, "n", ""},
		{"", problemEmptyBody, "", ""},
		{"  \n", problemEmptyBody, "", ""},
		{"{\"username\":\"\xc3\x28\",\"password\":\"p\"}", problemInvalidUTF8, "", ""},
		{`{`, problemNotJSON, "", ""},
		{`{"username":"n",}`, problemNotJSON, "", ""},
		{`{'username':'n'}`, problemNotJSON, "", ""},
		{`{"username":"n\x"}`, problemNotJSON, "", ""},
		{"{\"username\":\"a\tb\",\"password\":\"p\"}", problemNotJSON, "", ""},
		{`{"a":01}`, problemNotJSON, "", ""},
		{`{"a":1.}`, problemNotJSON, "", ""},
		{`{"a":tru}`, problemNotJSON, "", ""},
		{`{"a":NaN}`, problemNotJSON, "", ""},
		{`username=n&password=p`, problemNotJSON, "", ""},
		{`{"a":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `}`, problemUsernameMissing, "", ""},
		{`{"a":` + strings.Repeat(`[`, 32) + strings.Repeat(`]`, 32) + `}`, problemTooDeep, "", ""},
		{strings.Repeat(`[`, 100000), problemTooDeep, "", ""},
		{`[]`, problemNotObject, "", ""},
		{`"username"`, problemNotObject, "", ""},
		{`null`, problemNotObject, "", ""},
		{`{"username":"n","password":"p"}{}`, problemTrailingData, "", ""},
		{`{"username":"n","password":"p"} x`, problemTrailingData, "", ""},
		{`{}`, problemUsernameMissing, "", ""},
		{`{"username":null,"password":"p"}`, problemUsernameNotString, "", ""},
		{`{"username":["n"],"password":"p"}`, problemUsernameNotString, "", ""},
		{`{"username":"","password":"p"}`, problemUsernameEmpty, "", ""},
		{`{"username":"` + strings.Repeat("u", 257) + `","password":"p"}`, problemUsernameTooLong, "", ""},
		{`{"username":"n"}`, problemPasswordMissing, "", ""},
		{`{"username":"n","password":123}`, problemPasswordNotString, "", ""},
		{`{"username":"n","password":""}`, problemPasswordEmpty, "", ""},
		{`{"username":"n","password":"p","ip":7}`, problemIPNotString, "", ""},
		{`{"username":"n","password":"p","ip":null}`, problemIPNotString, "", ""},
		{`{"username":"n","password":"p","ip":""}`, problemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":"999.1.1.1"}`, problemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":"fe80::1%eth0"}`, problemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":"example.com"}`, problemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":" 10.0.0.1"}`, problemIPInvalid, "", ""},
	}
	for _, tt := range tests {
		var lr loginRequest
		got := lr.decode([]byte(tt.body))
		if got != tt.want {
			t.Errorf("decode(%.60q) = %q, want %q", tt.body, problemDescriptions[got], problemDescriptions[tt.want])
			continue
		}
		if got != loginOK {
			continue
		}
		if string(lr.username) != tt.username {
			t.Errorf("decode(%q) username %q, want %q", tt.body, lr.username, tt.username)
		}
		wantIP := netip.Addr{}
		if tt.ip != "" {
			wantIP = netip.MustParseAddr(tt.ip)
		}
		if lr.addr != wantIP {
			t.Errorf("decode(%q) ip %v, want %v", tt.body, lr.addr, wantIP)
		}
	}
}

func TestLoginDecodeKeepsNothingOfTheBody(t *testing.T) {
	body := []byte(`{"username":"north","password":"pw"}`)
	var lr loginRequest
	if p := lr.decode(body); p != loginOK {
		t.Fatal(problemDescriptions[p])
	}
	for i := range body {
		body[i] = 'X'
	}
	if string(lr.username) != "north" {
		t.Fatalf("username changed with the body to %q", lr.username)
	}
}

// A pooled loginRequest must not keep a large buffer because one body held
// a large value, and must never hold a copy of the password.
func TestLoginDecodeCopiesLittle(t *testing.T) {
	huge := strings.Repeat("u", 60<<10)
	tests := []struct {
		body string
		want loginProblem
	}{
		{`{"username":"` + huge + `","password":"p"}`, problemUsernameTooLong},
		{`{"username":"` + strings.Repeat(`\u00e9`, 10<<10) + `","password":"p"}`, problemUsernameTooLong},
		{`{"username":"n","password":"p","ip":"` + huge + `"}`, problemIPInvalid},
		{`{"username":"n","password":"` + huge + `"}`, loginOK},
	}
	for _, tt := range tests {
		var lr loginRequest
		if got := lr.decode([]byte(tt.body)); got != tt.want {
			t.Errorf("decode(%.40q…) = %q, want %q", tt.body, problemDescriptions[got], problemDescriptions[tt.want])
		}
		if c := cap(lr.username) + cap(lr.ip); c > 512 {
			t.Errorf("decode(%.40q…) kept buffers of %d bytes, want at most 512", tt.body, c)
		}
	}

	body := []byte(`{"username":"n","password":"s\u00e9cret"}`)
	var lr loginRequest
	if p := lr.decode(body); p != loginOK {
		t.Fatal(problemDescriptions[p])
	}
	if len(lr.password) == 0 || &lr.password[0] != &body[bytes.Index(body, []byte(`s\u00e9`))] {
		t.Fatalf("password %q is not a view of the body", lr.password)
	}
	if got := string(lr.appendPassword(nil)); got != "s\u00e9cret" {
		t.Fatalf("appendPassword = %q, want %q", got, "s\u00e9cret")
	}
	lr.reset()
	if lr.password != nil {
		t.Fatal("reset kept the view of the password")
	}
}

func TestLoginDecodeAllocatesNothing(t *testing.T) {
	bodies := [][]byte{
		[]byte(`{"username":"north","password":"pw","ip":"2001:db8::1"}`),
		[]byte(`{"username":"\u006eorth","password":"p\u00e9","ip":"10.0.0.1"}`),
		[]byte(`{"username":`),
	}
	// A bad ip costs the one allocation of netip's error; that path is not
	// a hot one.
	var lr loginRequest
	for _, b := range bodies {
		lr.decode(b) // grow the buffers
		if n := testing.AllocsPerRun(100, func() { lr.decode(b) }); n != 0 {
			t.Errorf("decode(%q) allocates %v times", b, n)
		}
	}
}

// FuzzLoginDecode checks the decoder against encoding/json: it must accept
// exactly the documents encoding/json accepts (within the depth limit), find
// the same field values, and never panic.
func FuzzLoginDecode(f *testing.F) {
	for _, s := range []string{
		`{"username":"north","password":"pw","ip":"192.0.2.1"}`,
		`{"username":"a\"b\\c\/\u00e9\ud83d\ude00\ud800","password":"p"}`,
		`{"\u0075sername":"n","password":"p","x":[1,-2.5e3,true,null,{}]}`,
		``, `{`, `[]`, `null`, `{"username":"n","password":"p"} x`,
		`{"username":null}`, `{"username":"","password":""}`, `{"username":"n","password":"p","ip":7}`,
		`{"username":"n","password":"p","ip":"fe80::1%eth0"}`, "{\"username\":\"\xff\"}",
		`{"a":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`, `{"a":01}`, `{"a":"\x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var lr loginRequest
		got := lr.decode(body)
		if got >= problemCount || got == problemBodyTooLarge {
			t.Fatalf("decode returned problem %d", got)
		}
		if !utf8.Valid(body) || len(bytes.Trim(body, " \t\r\n")) == 0 {
			if got != problemInvalidUTF8 && got != problemEmptyBody {
				t.Fatalf("decode(%q) = %q", body, problemDescriptions[got])
			}
			return
		}
		if got == problemTooDeep {
			return // encoding/json allows deeper nesting
		}
		refusedSyntax := got == problemNotJSON || got == problemTrailingData
		if valid := json.Valid(body); valid == refusedSyntax {
			t.Fatalf("decode(%q) = %q but json.Valid = %v", body, problemDescriptions[got], valid)
		}
		if refusedSyntax {
			return
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(body, &doc) != nil || doc == nil {
			if got != problemNotObject {
				t.Fatalf("decode(%q) = %q, but it is not an object", body, problemDescriptions[got])
			}
			return
		}
		if got == problemNotObject {
			t.Fatalf("decode(%q) says not an object", body)
		}
		check := func(name string, have []byte, kind fieldKind) {
			raw, ok := doc[name]
			var s string
			isString := ok && json.Unmarshal(raw, &s) == nil && len(raw) > 0 && raw[0] == '"'
			switch {
			case !ok && kind != fieldMissing:
				t.Fatalf("%s: decode found it, encoding/json did not in %q", name, body)
			case ok && !isString && kind != fieldOther:
				t.Fatalf("%s: not a string in %q, decode says kind %d", name, body, kind)
			case isString && (kind != fieldString || string(have) != s):
				t.Fatalf("%s: decode %q (kind %d), encoding/json %q in %q", name, have, kind, s, body)
			}
		}
		// Field values are filled whenever the syntax is sound; the
		// username and ip are cut just past their limits.
		cut := func(v []byte, keep int) []byte {
			if len(v) >= keep {
				raw := doc[map[int]string{usernameKeep: "username", ipKeep: "ip"}[keep]]
				var s string
				json.Unmarshal(raw, &s)
				if !strings.HasPrefix(s, string(v)) || len(v) > keep+utf8.UTFMax {
					t.Fatalf("kept %d bytes %q of %q, want a prefix of %d to %d bytes", len(v), v, s, keep, keep+utf8.UTFMax)
				}
				return []byte(s)
			}
			return v
		}
		check("username", cut(lr.username, usernameKeep), lr.usernameKind)
		check("password", lr.appendPassword(nil), lr.passwordKind)
		check("ip", cut(lr.ip, ipKeep), lr.ipKind)
	})
}
