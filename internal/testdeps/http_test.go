package testdeps

import "testing"

// TestTokenIn: only the login's success answer, byte for byte, gives a
// token.
func TestTokenIn(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		body, want string
		ok         bool
	}{
		{`{"code": 0, "token": "` + token + `", "description": "success"}`, token, true},
		{`{"code": 0, "token": "` + token + `", "description": "success"}` + "\n", "", false},
		{`{"code":0,"token":"` + token + `","description":"success"}`, "", false},
		{`{"code": 0, "token": "` + token[:31] + `", "description": "success"}`, "", false},
		{`{"code": 0, "token": "0123456789ABCDEF0123456789ABCDEF", "description": "success"}`, "", false},
		{`{"code": 2, "token": "", "description": "username or password is incorrect"}`, "", false},
	} {
		if got, ok := TokenIn(tt.body); got != tt.want || ok != tt.ok {
			t.Errorf("TokenIn(%q) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}
