package wire

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strconv"
)

// The answers keep the seed's shapes and the spacing of Python's
// json.dumps, byte for byte. Every refusal is built once, at start-up, so
// that answering one writes a constant; the two answers that carry a token
// or a username are appended to the caller's buffer.

const (
	loginOKPrefix = `{"code": 0, "token": "`
	loginOKSuffix = `", "description": "success"}`
)

// LoginOKLen is the length of every successful login body, so that the
// handler can build it in an array on its stack.
const LoginOKLen = len(loginOKPrefix) + 32 + len(loginOKSuffix)

// AppendLoginOK appends the answer to a successful login:
// {"code": 0, "token": "<32 lowercase hex digits>", "description": "success"}.
func AppendLoginOK(dst []byte, token [16]byte) []byte {
	dst = append(dst, loginOKPrefix...)
	dst = hex.AppendEncode(dst, token[:])
	return append(dst, loginOKSuffix...)
}

// AppendVerifyOK appends the answer to the verification of a live token:
// whose it is, the ip it holds, and its seconds left.
func AppendVerifyOK(dst, username []byte, ip netip.Addr, expiresIn int64) []byte {
	dst = append(dst, `{"code": 0, "description": "valid", "username": `...)
	dst = AppendJSONString(dst, username)
	dst = append(dst, `, "ip": "`...)
	dst = ip.AppendTo(dst)
	dst = append(dst, `", "expires_in": `...)
	dst = strconv.AppendInt(dst, expiresIn, 10)
	return append(dst, '}')
}

// AppendFailureBody appends the seed's failure shape with json.dumps'
// spacing: {"code": N, "token": "", "description": "..."}, without the
// token field for the token routes. It allocates: build answers with it
// once, at start-up.
func AppendFailureBody(dst []byte, code int, tokenField bool, description string) []byte {
	quoted, _ := json.Marshal(description) // a string always marshals
	dst = append(dst, `{"code": `...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	if tokenField {
		dst = append(dst, `, "token": ""`...)
	}
	dst = append(dst, `, "description": `...)
	dst = append(dst, quoted...)
	return append(dst, '}')
}

// RejectionBodies holds the 400 (and 413) answer for each LoginProblem,
// built once so that refusing a login writes a constant.
type RejectionBodies [ProblemCount][]byte

// NewRejectionBodies builds the answers for a server whose bodies may be
// at most maxBodySize bytes, which the 413's sentence names.
func NewRejectionBodies(maxBodySize int) *RejectionBodies {
	var r RejectionBodies
	for p := ProblemEmptyBody; p < ProblemCount; p++ {
		desc := problemDescriptions[p]
		if p == ProblemBodyTooLarge {
			desc = "request body is larger than " + strconv.Itoa(maxBodySize) + " bytes"
		}
		r[p] = AppendFailureBody(nil, 1, true, desc)
	}
	return &r
}

// BearerChallenge is the WWW-Authenticate value of a 401 that asks for
// credentials: a refused login, and a token route without a bearer token.
var BearerChallenge = []byte(`Bearer realm="northd"`)

// The bodies of the answers that are the same for every request. A wrong
// password and an unknown username get the same bytes.
var (
	WrongCredentialsBody = AppendFailureBody(nil, 2, true, "username or password is incorrect")
	// One answer for both limits, so that it does not tell which
	// usernames exist.
	TooManyFailuresBody = AppendFailureBody(nil, 3, true, "too many failed logins; wait the Retry-After seconds before trying again")
	HashBusyBody        = AppendFailureBody(nil, 4, true, "too many logins are waiting for a password check; retry after the Retry-After seconds")
	CheckerDownBody     = AppendFailureBody(nil, 4, true, "the password checker is restarting; retry after the Retry-After seconds")
	// The shared store could not serve the request in time: a login's
	// answer has the token field, a token route's has not.
	StoreDownLoginBody = AppendFailureBody(nil, 4, true, "the token store is unavailable; retry after the Retry-After seconds")
	StoreDownTokenBody = AppendFailureBody(nil, 4, false, "the token store is unavailable; retry after the Retry-After seconds")
	LoggedOutBody      = []byte(`{"code": 0, "description": "logged out"}`)
)

// TokenRefusal is the answer to a request whose token does not verify,
// built once.
type TokenRefusal struct {
	Status          int
	WWWAuthenticate []byte
	Body            []byte
}

// Refusal is the answer to p, which is not BearerOK.
func (p BearerProblem) Refusal() *TokenRefusal { return &tokenRefusals[p] }

// tokenRefusals answer each BearerProblem as RFC 6750 says: 401 with a
// Bearer challenge, which names invalid_token once a token was offered,
// and 400 invalid_request for a request that cannot be read as one.
var tokenRefusals = func() (r [BearerProblemCount]TokenRefusal) {
	challenge := string(BearerChallenge)
	invalid := []byte(challenge + `, error="invalid_token"`)
	r[BearerMissing] = TokenRefusal{401, BearerChallenge, AppendFailureBody(nil, 2, false, "send the token from /north/login as Authorization: Bearer TOKEN")}
	r[BearerSeveral] = TokenRefusal{400, []byte(challenge + `, error="invalid_request"`), AppendFailureBody(nil, 1, false, "send one Authorization header, not several")}
	r[BearerNotBearer] = TokenRefusal{401, BearerChallenge, AppendFailureBody(nil, 2, false, "Authorization must use the Bearer scheme: Authorization: Bearer TOKEN")}
	r[BearerMalformed] = TokenRefusal{401, invalid, AppendFailureBody(nil, 2, false, "the token must be the 32 lowercase hex digits /north/login returned")}
	r[BearerUnknown] = TokenRefusal{401, invalid, AppendFailureBody(nil, 2, false, "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again")}
	r[BearerExpired] = TokenRefusal{401, invalid, AppendFailureBody(nil, 2, false, "the token has expired; log in again")}
	return r
}()

// AppendJSONString appends s as a JSON string, exactly as encoding/json
// writes it. Printable ASCII that needs no escape, the usual username, is
// copied as it is without allocating; anything else goes through
// encoding/json.
func AppendJSONString(dst, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(string(s)) // a string always marshals
			return append(dst, quoted...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
