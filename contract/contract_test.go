package contract

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"northd/internal/testdeps"
)

// The literals below are written out again on purpose rather than built
// from the package's constants: a slip in either copy fails the test.

func TestFixedBodies(t *testing.T) {
	for _, tt := range []struct{ name, got, want string }{
		{"home", HomeBody, "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"><h1>Home Page</h1>"},
		{"404", NotFoundBody, "<h1>404 Not Found</h1>"},
		{"html", ContentTypeHTML, "text/html; charset=utf-8"},
		{"json", ContentTypeJSON, "application/json; charset=utf-8"},
		{"text", ContentTypeText, "text/plain; charset=utf-8"},
		{"cache-control", CacheControl, "no-store"},
		{"login prefix", LoginOKPrefix, "{\"code\": 0, \"token\": \""},
		{"login suffix", LoginOKSuffix, "\", \"description\": \"success\"}"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if LoginOKLen != 82 {
		t.Errorf("LoginOKLen = %d, want 82", LoginOKLen)
	}
}

func TestLoginFailure(t *testing.T) {
	for _, tt := range []struct{ description, want string }{
		{"username is required", "{\"code\": 1, \"token\": \"\", \"description\": \"username is required\"}"},
		{"request body is larger than 65536 bytes", "{\"code\": 1, \"token\": \"\", \"description\": \"request body is larger than 65536 bytes\"}"},
		{"", "{\"code\": 1, \"token\": \"\", \"description\": \"\"}"},
		// Quoted as encoding/json quotes, as the server does.
		{"a \"b\" <c>", "{\"code\": 1, \"token\": \"\", \"description\": \"a \\\"b\\\" \\u003cc\\u003e\"}"},
	} {
		if got := LoginFailure(tt.description); got != tt.want {
			t.Errorf("LoginFailure(%q) = %q, want %q", tt.description, got, tt.want)
		}
	}
}

func TestLoginToken(t *testing.T) {
	const good = "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e"
	for _, tt := range []struct {
		name, body string
		err        error // nil: the body is right and its token is good
	}{
		{"good", `{"code": 0, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e", "description": "success"}`, nil},
		{"variant 8", `{"code": 0, "token": "00000000000040008000000000000000", "description": "success"}`, nil},
		{"variant 9", `{"code": 0, "token": "ffffffffffff4fff9fffffffffffffff", "description": "success"}`, nil},
		{"variant a", `{"code": 0, "token": "0123456789ab4defa123456789abcdef", "description": "success"}`, nil},
		{"variant b", `{"code": 0, "token": "0123456789ab4defb123456789abcdef", "description": "success"}`, nil},
		{"all zero", `{"code": 0, "token": "00000000000000000000000000000000", "description": "success"}`, ErrTokenVersion},
		{"version 1", `{"code": 0, "token": "0c8e4f0e2b2f1d1c9a3e5b7d9f1a2c4e", "description": "success"}`, ErrTokenVersion},
		{"version 4 one digit late", `{"code": 0, "token": "0c8e4f0e2b2fd41c9a3e5b7d9f1a2c4e", "description": "success"}`, ErrTokenVersion},
		{"variant 7", `{"code": 0, "token": "0c8e4f0e2b2f4d1c7a3e5b7d9f1a2c4e", "description": "success"}`, ErrTokenVersion},
		{"variant c", `{"code": 0, "token": "0c8e4f0e2b2f4d1cca3e5b7d9f1a2c4e", "description": "success"}`, ErrTokenVersion},
		{"uppercase", `{"code": 0, "token": "0C8E4F0E2B2F4D1C9A3E5B7D9F1A2C4E", "description": "success"}`, ErrTokenFormat},
		{"not hex", `{"code": 0, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4g", "description": "success"}`, ErrTokenFormat},
		{"dashed", `{"code": 0, "token": "0c8e4f0e-2b2f-4d1c-9a3e-5b7d9f1a2c4e", "description": "success"}`, ErrLoginBody},
		{"31 digits", `{"code": 0, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4", "description": "success"}`, ErrLoginBody},
		{"33 digits", `{"code": 0, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e0", "description": "success"}`, ErrLoginBody},
		{"compact json", `{"code":0,"token":"0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e","description":"success"}`, ErrLoginBody},
		{"code 1", `{"code": 1, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e", "description": "success"}`, ErrLoginBody},
		{"trailing newline", "{\"code\": 0, \"token\": \"0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e\", \"description\": \"success\"}\n", ErrLoginBody},
		{"refusal", `{"code": 1, "token": "", "description": "username is required"}`, ErrLoginBody},
		{"empty", ``, ErrLoginBody},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := LoginToken(tt.body)
			if !errors.Is(err, tt.err) {
				t.Fatalf("LoginToken(%q) error = %v, want %v", tt.body, err, tt.err)
			}
			btok, berr := LoginToken([]byte(tt.body))
			if berr != err || string(btok) != tok {
				t.Errorf("[]byte: %q, %v; string: %q, %v", btok, berr, tok, err)
			}
			if err != nil {
				if tok != "" {
					t.Errorf("token %q returned with an error", tok)
				}
				return
			}
			// The token sits at bytes 22 to 54 of a right body.
			if want := tt.body[22:54]; tok != want {
				t.Errorf("token %q, want %q", tok, want)
			}
		})
	}
	if tok, err := LoginToken(`{"code": 0, "token": "` + good + `", "description": "success"}`); err != nil || tok != good {
		t.Errorf("LoginToken = %q, %v; want %q", tok, err, good)
	}
}

func TestCheckToken(t *testing.T) {
	for _, tt := range []struct {
		tok string
		err error
	}{
		{"0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e", nil},
		{"0c8e4f0e2b2f4d1caa3e5b7d9f1a2c4e", nil},
		{"0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4", ErrTokenFormat},
		{"", ErrTokenFormat},
		{"0c8e4f0e-2b2f-4d1c-9a3e-5b7d9f1a2c4e", ErrTokenFormat},
		{"0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4E", ErrTokenFormat},
		{"0c8e4f0e2b2f5d1c9a3e5b7d9f1a2c4e", ErrTokenVersion},
		{"0c8e4f0e2b2f4d1cda3e5b7d9f1a2c4e", ErrTokenVersion},
	} {
		if err := CheckToken(tt.tok); !errors.Is(err, tt.err) {
			t.Errorf("CheckToken(%q) = %v, want %v", tt.tok, err, tt.err)
		}
	}
}

// loadtest checks every response with LoginToken; it must not allocate.
func TestLoginTokenAllocs(t *testing.T) {
	body := []byte(`{"code": 0, "token": "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e", "description": "success"}`)
	if n := testing.AllocsPerRun(100, func() { LoginToken(body) }); n != 0 {
		t.Errorf("LoginToken allocates %v times a call", n)
	}
}

func TestCredentialRefusals(t *testing.T) {
	for _, tt := range []struct {
		name       string
		status     int
		body       string
		wantStatus int
		want       string
	}{
		{"wrong credentials", WrongCredentialsStatus, WrongCredentialsBody, 401,
			"{\"code\": 2, \"token\": \"\", \"description\": \"username or password is incorrect\"}"},
		{"too many failures", TooManyFailuresStatus, TooManyFailuresBody, 429,
			"{\"code\": 3, \"token\": \"\", \"description\": \"too many failed logins; wait the Retry-After seconds before trying again\"}"},
		{"hash busy", HashBusyStatus, HashBusyBody, 503,
			"{\"code\": 4, \"token\": \"\", \"description\": \"too many logins are waiting for a password check; retry after the Retry-After seconds\"}"},
		{"checker down", CheckerDownStatus, CheckerDownBody, 503,
			"{\"code\": 4, \"token\": \"\", \"description\": \"the password checker is restarting; retry after the Retry-After seconds\"}"},
		{"claim refused", ClaimRefusedStatus, ClaimRefusedBody, 403,
			"{\"code\": 5, \"token\": \"\", \"description\": \"this username may not log in for that ip: the users file lists the addresses it may claim; send one of them as ip, or ask the operator to add this one\"}"},
		{"ip held", IPHeldStatus, IPHeldBody, 409,
			"{\"code\": 6, \"token\": \"\", \"description\": \"another username holds a live token for that ip; send your own north server's ip, or wait until that token is logged out or expires\"}"},
	} {
		if tt.status != tt.wantStatus || tt.body != tt.want {
			t.Errorf("%s: %d %q, want %d %q", tt.name, tt.status, tt.body, tt.wantStatus, tt.want)
		}
	}
	if Challenge != "Bearer realm=\"northd\"" {
		t.Errorf("Challenge = %q", Challenge)
	}
	if LoggedOutBody != "{\"code\": 0, \"description\": \"logged out\"}" || VerifyPath != "/north/verify" || LogoutPath != "/north/logout" {
		t.Errorf("logout body %q, paths %q %q", LoggedOutBody, VerifyPath, LogoutPath)
	}
}

func TestVerifyExpiresIn(t *testing.T) {
	prefix := VerifyPrefix("north-1", "192.0.2.99")
	if want := "{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": "; prefix != want {
		t.Fatalf("VerifyPrefix = %q, want %q", prefix, want)
	}
	// Quoted as encoding/json quotes, as the server does.
	if got, want := VerifyPrefix("a\"<b>", "2001:db8::1"), "{\"code\": 0, \"description\": \"valid\", \"username\": \"a\\\"\\u003cb\\u003e\", \"ip\": \"2001:db8::1\", \"expires_in\": "; got != want {
		t.Errorf("VerifyPrefix = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		body string
		n    int // 0: an error
	}{
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": 3600}", 3600},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": 1}", 1},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": 0}", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": 036}", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": -5}", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": }", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": 3600", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.99\", \"expires_in\": 3600}\n", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-2\", \"ip\": \"192.0.2.99\", \"expires_in\": 3600}", 0},
		{"{\"code\": 0, \"description\": \"valid\", \"username\": \"north-1\", \"ip\": \"192.0.2.98\", \"expires_in\": 3600}", 0},
		{"{\"code\": 2, \"description\": \"the token has expired; log in again\"}", 0},
		{"", 0},
	} {
		n, err := VerifyExpiresIn(tt.body, prefix)
		if tt.n == 0 {
			if !errors.Is(err, ErrVerifyBody) {
				t.Errorf("VerifyExpiresIn(%q) = %d, %v; want ErrVerifyBody", tt.body, n, err)
			}
			continue
		}
		if err != nil || n != tt.n {
			t.Errorf("VerifyExpiresIn(%q) = %d, %v; want %d", tt.body, n, err, tt.n)
		}
		if bn, berr := VerifyExpiresIn([]byte(tt.body), prefix); bn != n || berr != err {
			t.Errorf("[]byte: %d, %v", bn, berr)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		values []string
		n      int // 0: an error
	}{
		{[]string{"6"}, 6},
		{[]string{"60"}, 60},
		{[]string{"1"}, 1},
		{[]string{"0"}, 0},
		{[]string{"06"}, 0},
		{[]string{"-1"}, 0},
		{[]string{"1.5"}, 0},
		{[]string{" 6"}, 0},
		{[]string{""}, 0},
		{[]string{"Wed, 21 Oct 2026 07:28:00 GMT"}, 0},
		{[]string{"6", "6"}, 0},
		{nil, 0},
		{[]string{"1234567890"}, 0},
	} {
		n, err := RetryAfter(tt.values)
		if tt.n == 0 {
			if !errors.Is(err, ErrRetryAfter) {
				t.Errorf("RetryAfter(%q) = %d, %v; want ErrRetryAfter", tt.values, n, err)
			}
		} else if err != nil || n != tt.n {
			t.Errorf("RetryAfter(%q) = %d, %v; want %d", tt.values, n, err, tt.n)
		}
	}
}

// loadtest checks every verification with VerifyExpiresIn; it must not
// allocate.
func TestVerifyExpiresInAllocs(t *testing.T) {
	prefix := VerifyPrefix("north-1", "192.0.2.99")
	body := []byte(prefix + "3600}")
	if n := testing.AllocsPerRun(100, func() { VerifyExpiresIn(body, prefix) }); n != 0 {
		t.Errorf("VerifyExpiresIn allocates %v times a call", n)
	}
}

// TestContractIsTheDocuments: every answer this package names is one
// docs/openapi.yaml describes for its route (status, content type,
// headers, body), and each body's code is one of the document's codes,
// so that the contract and the document are one truth, not two.
func TestContractIsTheDocuments(t *testing.T) {
	const token = "1132682a72c045c3af78092fa8c44bf2"
	retry := [2]string{"Retry-After", "1"}
	challenge := [2]string{"WWW-Authenticate", Challenge}
	for _, tt := range []struct {
		method, path string
		status       int
		contentType  string
		header       [2]string
		body         string
	}{
		{"GET", "/", 200, ContentTypeHTML, [2]string{}, HomeBody},
		{"POST", "/", 200, ContentTypeHTML, [2]string{}, HomeBody},
		{"GET", "/no/such/path", 404, ContentTypeHTML, [2]string{}, NotFoundBody},
		{"POST", "/north/login", 200, ContentTypeJSON, [2]string{}, LoginOKPrefix + token + LoginOKSuffix},
		{"POST", "/north/login", 400, ContentTypeJSON, [2]string{}, LoginFailure("password is required")},
		{"POST", "/north/login", 413, ContentTypeJSON, [2]string{}, LoginFailure("request body is larger than 65536 bytes")},
		{"POST", "/north/login", WrongCredentialsStatus, ContentTypeJSON, challenge, WrongCredentialsBody},
		{"POST", "/north/login", TooManyFailuresStatus, ContentTypeJSON, retry, TooManyFailuresBody},
		{"POST", "/north/login", HashBusyStatus, ContentTypeJSON, retry, HashBusyBody},
		{"POST", "/north/login", CheckerDownStatus, ContentTypeJSON, retry, CheckerDownBody},
		{"POST", "/north/login", ClaimRefusedStatus, ContentTypeJSON, [2]string{}, ClaimRefusedBody},
		{"POST", "/north/login", IPHeldStatus, ContentTypeJSON, [2]string{}, IPHeldBody},
		{"GET", VerifyPath, 200, ContentTypeJSON, [2]string{}, VerifyPrefix("north-1", "2001:db8::1") + "3600}"},
		{"POST", LogoutPath, 200, ContentTypeJSON, [2]string{}, LoggedOutBody},
	} {
		header := http.Header{"Content-Type": {tt.contentType}, "Cache-Control": {CacheControl}}
		if tt.header[0] != "" {
			header.Set(tt.header[0], tt.header[1])
		}
		testdeps.CheckAnswer(t, tt.method, tt.path, nil, tt.status, header, []byte(tt.body))
		if tt.contentType != ContentTypeJSON {
			continue
		}
		var body struct{ Code *float64 }
		if err := json.Unmarshal([]byte(tt.body), &body); err != nil || body.Code == nil {
			t.Errorf("%s %s %d: %s has no code (%v)", tt.method, tt.path, tt.status, tt.body, err)
			continue
		}
		if codes := testdeps.OpenAPI(t).Components.Schemas["Code"].Value.Enum; !slices.Contains(codes, any(*body.Code)) {
			t.Errorf("%s %s %d: code %v is not one of the document's codes %v", tt.method, tt.path, tt.status, *body.Code, codes)
		}
	}
}
