package wire

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
		want     LoginProblem
		username string
		ip       string
	}{
		{`{"username":"north","password":"pw","ip":"192.0.2.1"}`, LoginOK, "north", "192.0.2.1"},
		{" \t\r\n{\"username\" : \"n\" , \"password\":\"p\"}\n", LoginOK, "n", ""},
		{`{"username":"a\"b\\c\/\u00e9\ud83d\ude00\ud800","password":"p"}`, LoginOK, "a\"b\\c/é😀\uFFFD", ""},
		{`{"\u0075sername":"escaped key","password":"p"}`, LoginOK, "escaped key", ""},
		{`{"username":"first","username":"last","password":"p"}`, LoginOK, "last", ""},
		{`{"username":"n","password":"p","ip":"2001:db8::1"}`, LoginOK, "n", "2001:db8::1"},
		{`{"username":"n","password":"p","ip":"::ffff:10.1.2.3"}`, LoginOK, "n", "10.1.2.3"},
		{`{"username":"n","password":"p","x":{"y":[true,false,null,-0.5e+10,"s"]}}`, LoginOK, "n", ""},
		{"", ProblemEmptyBody, "", ""},
		{"  \n", ProblemEmptyBody, "", ""},
		{"{\"username\":\"\xc3\x28\",\"password\":\"p\"}", ProblemInvalidUTF8, "", ""},
		{`{`, ProblemNotJSON, "", ""},
		{`{"username":"n",}`, ProblemNotJSON, "", ""},
		{`{'username':'n'}`, ProblemNotJSON, "", ""},
		{`{"username":"n\x"}`, ProblemNotJSON, "", ""},
		{"{\"username\":\"a\tb\",\"password\":\"p\"}", ProblemNotJSON, "", ""},
		{`{"a":01}`, ProblemNotJSON, "", ""},
		{`{"a":1.}`, ProblemNotJSON, "", ""},
		{`{"a":tru}`, ProblemNotJSON, "", ""},
		{`{"a":NaN}`, ProblemNotJSON, "", ""},
		{`username=n&password=p`, ProblemNotJSON, "", ""},
		{`{"a":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `}`, ProblemUsernameMissing, "", ""},
		{`{"a":` + strings.Repeat(`[`, 32) + strings.Repeat(`]`, 32) + `}`, ProblemTooDeep, "", ""},
		{strings.Repeat(`[`, 100000), ProblemTooDeep, "", ""},
		{`[]`, ProblemNotObject, "", ""},
		{`"username"`, ProblemNotObject, "", ""},
		{`null`, ProblemNotObject, "", ""},
		{`{"username":"n","password":"p"}{}`, ProblemTrailingData, "", ""},
		{`{"username":"n","password":"p"} x`, ProblemTrailingData, "", ""},
		{`{}`, ProblemUsernameMissing, "", ""},
		{`{"username":null,"password":"p"}`, ProblemUsernameNotString, "", ""},
		{`{"username":["n"],"password":"p"}`, ProblemUsernameNotString, "", ""},
		{`{"username":"","password":"p"}`, ProblemUsernameEmpty, "", ""},
		{`{"username":"` + strings.Repeat("u", 257) + `","password":"p"}`, ProblemUsernameTooLong, "", ""},
		{`{"username":"n"}`, ProblemPasswordMissing, "", ""},
		{`{"username":"n","password":123}`, ProblemPasswordNotString, "", ""},
		{`{"username":"n","password":""}`, ProblemPasswordEmpty, "", ""},
		{`{"username":"n","password":"p","ip":7}`, ProblemIPNotString, "", ""},
		{`{"username":"n","password":"p","ip":null}`, ProblemIPNotString, "", ""},
		{`{"username":"n","password":"p","ip":""}`, ProblemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":"999.1.1.1"}`, ProblemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":"fe80::1%eth0"}`, ProblemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":"example.com"}`, ProblemIPInvalid, "", ""},
		{`{"username":"n","password":"p","ip":" 10.0.0.1"}`, ProblemIPInvalid, "", ""},
	}
	for _, tt := range tests {
		var lr LoginRequest
		got := lr.Decode([]byte(tt.body))
		if got != tt.want {
			t.Errorf("Decode(%.60q) = %q, want %q", tt.body, problemDescriptions[got], problemDescriptions[tt.want])
			continue
		}
		if got != LoginOK {
			continue
		}
		if string(lr.Username) != tt.username {
			t.Errorf("Decode(%q) username %q, want %q", tt.body, lr.Username, tt.username)
		}
		wantIP := netip.Addr{}
		if tt.ip != "" {
			wantIP = netip.MustParseAddr(tt.ip)
		}
		if lr.Addr != wantIP {
			t.Errorf("Decode(%q) ip %v, want %v", tt.body, lr.Addr, wantIP)
		}
	}
}

func TestLoginDecodeKeepsNothingOfTheBody(t *testing.T) {
	body := []byte(`{"username":"north","password":"pw"}`)
	var lr LoginRequest
	if p := lr.Decode(body); p != LoginOK {
		t.Fatal(problemDescriptions[p])
	}
	for i := range body {
		body[i] = 'X'
	}
	if string(lr.Username) != "north" {
		t.Fatalf("username changed with the body to %q", lr.Username)
	}
}

// A pooled LoginRequest must not keep a large buffer because one body held
// a large value, and must never hold a copy of the password.
func TestLoginDecodeCopiesLittle(t *testing.T) {
	huge := strings.Repeat("u", 60<<10)
	tests := []struct {
		body string
		want LoginProblem
	}{
		{`{"username":"` + huge + `","password":"p"}`, ProblemUsernameTooLong},
		{`{"username":"` + strings.Repeat(`\u00e9`, 10<<10) + `","password":"p"}`, ProblemUsernameTooLong},
		{`{"username":"n","password":"p","ip":"` + huge + `"}`, ProblemIPInvalid},
		{`{"username":"n","password":"` + huge + `"}`, LoginOK},
	}
	for _, tt := range tests {
		var lr LoginRequest
		if got := lr.Decode([]byte(tt.body)); got != tt.want {
			t.Errorf("Decode(%.40q…) = %q, want %q", tt.body, problemDescriptions[got], problemDescriptions[tt.want])
		}
		if c := cap(lr.Username) + cap(lr.ip); c > 512 {
			t.Errorf("Decode(%.40q…) kept buffers of %d bytes, want at most 512", tt.body, c)
		}
	}

	body := []byte(`{"username":"n","password":"s\u00e9cret"}`)
	var lr LoginRequest
	if p := lr.Decode(body); p != LoginOK {
		t.Fatal(problemDescriptions[p])
	}
	if len(lr.Password) == 0 || &lr.Password[0] != &body[bytes.Index(body, []byte(`s\u00e9`))] {
		t.Fatalf("password %q is not a view of the body", lr.Password)
	}
	if got := string(AppendPassword(nil, lr.Password)); got != "s\u00e9cret" {
		t.Fatalf("AppendPassword = %q, want %q", got, "s\u00e9cret")
	}
	lr.Reset()
	if lr.Password != nil {
		t.Fatal("Reset kept the view of the password")
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
	var lr LoginRequest
	for _, b := range bodies {
		lr.Decode(b) // grow the buffers
		if n := testing.AllocsPerRun(100, func() { lr.Decode(b) }); n != 0 {
			t.Errorf("Decode(%q) allocates %v times", b, n)
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
		var lr LoginRequest
		got := lr.Decode(body)
		if got >= ProblemCount || got == ProblemBodyTooLarge {
			t.Fatalf("Decode returned problem %d", got)
		}
		if !utf8.Valid(body) || len(bytes.Trim(body, " \t\r\n")) == 0 {
			if got != ProblemInvalidUTF8 && got != ProblemEmptyBody {
				t.Fatalf("Decode(%q) = %q", body, problemDescriptions[got])
			}
			return
		}
		if got == ProblemTooDeep {
			return // encoding/json allows deeper nesting
		}
		refusedSyntax := got == ProblemNotJSON || got == ProblemTrailingData
		if valid := json.Valid(body); valid == refusedSyntax {
			t.Fatalf("Decode(%q) = %q but json.Valid = %v", body, problemDescriptions[got], valid)
		}
		if refusedSyntax {
			return
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(body, &doc) != nil || doc == nil {
			if got != ProblemNotObject {
				t.Fatalf("Decode(%q) = %q, but it is not an object", body, problemDescriptions[got])
			}
			return
		}
		if got == ProblemNotObject {
			t.Fatalf("Decode(%q) says not an object", body)
		}
		check := func(name string, have []byte, kind fieldKind) {
			raw, ok := doc[name]
			var s string
			isString := ok && json.Unmarshal(raw, &s) == nil && len(raw) > 0 && raw[0] == '"'
			switch {
			case !ok && kind != fieldMissing:
				t.Fatalf("%s: Decode found it, encoding/json did not in %q", name, body)
			case ok && !isString && kind != fieldOther:
				t.Fatalf("%s: not a string in %q, Decode says kind %d", name, body, kind)
			case isString && (kind != fieldString || string(have) != s):
				t.Fatalf("%s: Decode %q (kind %d), encoding/json %q in %q", name, have, kind, s, body)
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
		check("username", cut(lr.Username, usernameKeep), lr.usernameKind)
		check("password", AppendPassword(nil, lr.Password), lr.passwordKind)
		check("ip", cut(lr.ip, ipKeep), lr.ipKind)
	})
}

// FuzzParseIP checks ParseIP against netip.ParseAddr, which it must agree
// with except that it refuses zones and unmaps IPv4-mapped addresses.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "::1", "::ffff:1.2.3.4", "fe80::1%eth0", "", "1.2.3.04", "0.0.0.00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseIP([]byte(s))
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Zone() == ""
		if ok != wantOK || (ok && got != want.Unmap()) {
			t.Fatalf("ParseIP(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	})
}
