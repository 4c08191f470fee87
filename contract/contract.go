// Package contract is northd's wire contract as the tools check it: the
// fixed bodies, the content types, the login answers and the form of a
// login token. loadtest, bench/cmd/compare and lbtest take it from here,
// so that they agree on what a right answer is and are equally strict.
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
