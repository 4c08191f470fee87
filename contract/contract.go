// Package contract is northd's wire contract as the tools check it: the
// fixed bodies, the content types, the login answers (refusals of
// credentials and of claimed ips included), the form of a login token and
// the answer of /north/verify. loadtest, bench/cmd/compare and lbtest
// take it from here, so that they agree on what a right answer is and are
// equally strict.
//
// The server does not use this package, and its own tests keep their own
// literal bytes: a change here that the server does not make (or the
// reverse) then fails somewhere instead of passing everywhere.
package contract

import (
	"encoding/json"
	"errors"
)

// The fixed bodies and the headers every answer carries.
const (
	HomeBody     = `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`
	NotFoundBody = `<h1>404 Not Found</h1>`

	ContentTypeHTML = "text/html; charset=utf-8"        // GET / and the 404 page
	ContentTypeJSON = "application/json; charset=utf-8" // every answer of /north/login but 405
	ContentTypeText = "text/plain; charset=utf-8"       // 405, and fasthttp's own refusals
	CacheControl    = "no-store"                        // on every answer
)

// A successful login is LoginOKPrefix, the token, LoginOKSuffix: these
// exact bytes, spaces included.
const (
	LoginOKPrefix = `{"code": 0, "token": "`
	LoginOKSuffix = `", "description": "success"}`
	TokenLen      = 32
	LoginOKLen    = len(LoginOKPrefix) + TokenLen + len(LoginOKSuffix)
)

// LoginFailure is the body of a refused login: code 1, an empty token and
// the description as a JSON string, written as the server writes it.
func LoginFailure(description string) string {
	quoted, _ := json.Marshal(description) // a string always marshals
	return `{"code": 1, "token": "", "description": ` + string(quoted) + `}`
}

// The refusals of a login whose credentials northd with -users did not
// accept, each with its status: a wrong password and an unknown username
// get the same 401 (with Challenge in WWW-Authenticate, so as not to tell
// which usernames exist); too many failures from one client address or
// for one username get 429, and a full queue of password checks 503, as
// does a login whose check finds the password checker process restarting,
// all with a Retry-After header in whole seconds (RetryAfter checks it).
const (
	WrongCredentialsStatus = 401
	WrongCredentialsBody   = `{"code": 2, "token": "", "description": "username or password is incorrect"}`
	TooManyFailuresStatus  = 429
	TooManyFailuresBody    = `{"code": 3, "token": "", "description": "too many failed logins; wait the Retry-After seconds before trying again"}`
	HashBusyStatus         = 503
	HashBusyBody           = `{"code": 4, "token": "", "description": "too many logins are waiting for a password check; retry after the Retry-After seconds"}`
	CheckerDownStatus      = 503
	CheckerDownBody        = `{"code": 4, "token": "", "description": "the password checker is restarting; retry after the Retry-After seconds"}`
	Challenge              = `Bearer realm="northd"`
)

// The refusals of a login whose credentials were right but whose ip it
// may not claim: 403 when the users file lists the addresses the user may
// claim and this is not one of them; 409 when another username holds the
// ip's live token (until that token is logged out or expires). Neither
// carries Retry-After or WWW-Authenticate.
const (
	ClaimRefusedStatus = 403
	ClaimRefusedBody   = `{"code": 5, "token": "", "description": "this username may not log in for that ip: the users file lists the addresses it may claim; send one of them as ip, or ask the operator to add this one"}`
	IPHeldStatus       = 409
	IPHeldBody         = `{"code": 6, "token": "", "description": "another username holds a live token for that ip; send your own north server's ip, or wait until that token is logged out or expires"}`
)

// GET /north/verify with "Authorization: Bearer TOKEN" answers a live
// token with VerifyPrefix(username, ip), the seconds it has left (a
// positive whole number) and "}". POST /north/logout answers LoggedOutBody.
const (
	VerifyPath    = "/north/verify"
	LogoutPath    = "/north/logout"
	LoggedOutBody = `{"code": 0, "description": "logged out"}`
)

// VerifyPrefix is the start of a successful verification of a token that
// username got for the north server ip, up to the expires_in value. ip
// must be written as northd writes it (net/netip's form: 192.0.2.10,
// 2001:db8::1).
func VerifyPrefix(username, ip string) string {
	quoted, _ := json.Marshal(username) // a string always marshals
	return `{"code": 0, "description": "valid", "username": ` + string(quoted) + `, "ip": "` + ip + `", "expires_in": `
}

// ErrVerifyBody is VerifyExpiresIn's error.
var ErrVerifyBody = errors.New(`not the verification body {"code": 0, "description": "valid", "username": ..., "ip": ..., "expires_in": N} expected`)

// VerifyExpiresIn checks that body is prefix (from VerifyPrefix), a
// positive whole number without leading zeros, and "}", and returns the
// number: the seconds the token has left.
func VerifyExpiresIn[T Text](body T, prefix string) (int, error) {
	n := len(body) - len(prefix) - 1 // the digits
	if n < 1 || n > 10 || !hasAt(body, 0, prefix) || body[len(body)-1] != '}' || body[len(prefix)] == '0' {
		return 0, ErrVerifyBody
	}
	v := 0
	for i := len(prefix); i < len(body)-1; i++ {
		c := body[i]
		if c < '0' || c > '9' {
			return 0, ErrVerifyBody
		}
		v = v*10 + int(c-'0')
	}
	return v, nil
}

// ErrRetryAfter is RetryAfter's error.
var ErrRetryAfter = errors.New("want one Retry-After header of a positive whole number of seconds")

// RetryAfter checks a response's Retry-After header values (all of them):
// northd sends exactly one, a positive whole number of seconds without
// leading zeros, and returns it.
func RetryAfter(values []string) (int, error) {
	if len(values) != 1 {
		return 0, ErrRetryAfter
	}
	v := values[0]
	if v == "" || len(v) > 9 || v[0] == '0' {
		return 0, ErrRetryAfter
	}
	n := 0
	for i := range len(v) {
		if v[i] < '0' || v[i] > '9' {
			return 0, ErrRetryAfter
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, nil
}

// What LoginToken and CheckToken return; tell them apart with errors.Is.
var (
	ErrLoginBody    = errors.New(`not a login success body {"code": 0, "token": "<32 hex digits>", "description": "success"}`)
	ErrTokenFormat  = errors.New("token is not 32 lowercase hex digits")
	ErrTokenVersion = errors.New("token is not a random UUID (version 4, RFC 4122 variant)")
)

// Text is a body or a token as the callers hold it: loadtest checks
// []byte on its hot path without allocating, the others hold strings.
type Text interface{ ~string | ~[]byte }

// CheckToken reports whether tok is a login token: a UUID version 4 of the
// RFC 4122 variant, written as 32 lowercase hex digits without dashes.
// The version is hex digit 13 (index 12), which must be 4; the variant's
// top bits are in digit 17 (index 16), which must be 8, 9, a or b.
func CheckToken[T Text](tok T) error {
	if len(tok) != TokenLen {
		return ErrTokenFormat
	}
	for i := range len(tok) {
		if c := tok[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ErrTokenFormat
		}
	}
	if v := tok[16]; tok[12] != '4' || (v != '8' && v != '9' && v != 'a' && v != 'b') {
		return ErrTokenVersion
	}
	return nil
}

// LoginToken checks that body is a successful login, byte for byte around
// the token, with a token CheckToken accepts, and returns the token (a
// slice of body). The error is ErrLoginBody, ErrTokenFormat or
// ErrTokenVersion.
func LoginToken[T Text](body T) (T, error) {
	if len(body) != LoginOKLen || !hasAt(body, 0, LoginOKPrefix) || !hasAt(body, LoginOKLen-len(LoginOKSuffix), LoginOKSuffix) {
		return body[:0], ErrLoginBody
	}
	tok := body[len(LoginOKPrefix) : len(LoginOKPrefix)+TokenLen]
	if err := CheckToken(tok); err != nil {
		return body[:0], err
	}
	return tok, nil
}

// hasAt reports whether s is found in b at offset i (which the caller has
// checked is in range). A loop rather than a conversion, so that neither
// instance allocates.
func hasAt[T Text](b T, i int, s string) bool {
	for j := range len(s) {
		if b[i+j] != s[j] {
			return false
		}
	}
	return true
}
