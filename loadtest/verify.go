package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"northd/contract"
)

// Error kinds a response can fail with. The report counts them as
// "<case>/<kind>", e.g. "login/token-repeated".
const (
	errStatus        = "status"         // wrong status code
	errContentType   = "content-type"   // wrong or missing Content-Type
	errCacheControl  = "cache-control"  // Cache-Control is not exactly no-store
	errBody          = "body"           // body differs from the contract's
	errTokenFormat   = "token-format"   // login body shape or token not 32 lowercase hex
	errTokenVersion  = "token-version"  // token is not a UUID version 4, RFC 4122 variant
	errTokenRepeated = "token-repeated" // a token seen before in this run
	errNotClosed     = "not-closed"     // the connection stayed open where it must close
	errTimeout       = "timeout"        // no response within -timeout
	errRefused       = "refused"        // connection refused
	errReset         = "reset"          // connection reset or closed before a response
	errTransport     = "transport"      // any other failure to get a response
	errUntagged      = "untagged"       // a result the tool cannot attribute (a bug)
	errAccepted      = "accepted"       // a login that had to be refused (a wrong password) got a token
	errChallenge     = "challenge"      // WWW-Authenticate is not the one the contract names
	errRetryAfter    = "retry-after"    // Retry-After missing, or not a positive whole number of seconds
	errVerify        = "verify-body"    // not the verification of the token's username and ip
)

// transportKinds are the kinds that mean "no answer" rather than "a wrong
// answer"; a ramp treats them as overload, the others as bugs.
var transportKinds = map[string]bool{errTimeout: true, errRefused: true, errReset: true, errTransport: true}

// verifier checks every response against the contract. It is used from one
// goroutine.
type verifier struct {
	cases  []reqCase
	tokens *tokenSet
}

// verify returns the case name and the error kind ("" when the response is
// right).
func (v *verifier) verify(r *vegeta.Result) (caseName, kind string) {
	ci, err := strconv.Atoi(r.Headers.Get(caseHeader))
	if err != nil || ci < 0 || ci >= len(v.cases) {
		// A response carries the tag back; a failure to get one carries
		// it in its error (taggedError).
		if ci, ok := errorTag(r.Error); ok && ci < len(v.cases) {
			return v.cases[ci].name, classifyTransport(r.Error)
		}
		return "no-response", classifyTransport(r.Error)
	}
	c := &v.cases[ci]
	if r.Code == 0 {
		return c.name, classifyTransport(r.Error)
	}
	n, _ := strconv.ParseUint(r.Headers.Get(indexHeader), 10, 64)
	return c.name, v.checkIndexed(&c.want, n, int(r.Code), r.Headers, r.Body)
}

// taggedError is a failure to get a response, with the case of its
// request, so that a timeout is counted against the case that timed out.
type taggedError struct {
	tag string // the case index
	err error
}

const errorTagPrefix = "loadtest-case "

func (e *taggedError) Error() string { return errorTagPrefix + e.tag + ": " + e.err.Error() }
func (e *taggedError) Unwrap() error { return e.err }

// errorTag finds a taggedError's case in an error message, which the
// HTTP client may have wrapped.
func errorTag(msg string) (int, bool) {
	i := strings.Index(msg, errorTagPrefix)
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(errorTagPrefix):]
	tag, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	ci, err := strconv.Atoi(tag)
	return ci, err == nil && ci >= 0
}

func classifyTransport(msg string) string {
	switch {
	case msg == "":
		return errUntagged
	case strings.Contains(msg, "Timeout") || strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline exceeded"):
		return errTimeout
	case strings.Contains(msg, "connection refused"):
		return errRefused
	case strings.Contains(msg, "reset by peer") || strings.Contains(msg, "EOF") || strings.Contains(msg, "broken pipe"):
		return errReset
	}
	return errTransport
}

// check verifies one response; the first mismatch is the one counted.
func (v *verifier) check(want *expectation, status int, h http.Header, body []byte) string {
	return v.checkIndexed(want, 0, status, h, body)
}

// checkIndexed verifies the n-th response of a case (n matters only to
// want.verifyPrefix).
func (v *verifier) checkIndexed(want *expectation, n uint64, status int, h http.Header, body []byte) string {
	if want.oneOf != nil {
		return v.checkOneOf(want, status, h, body)
	}
	if status != want.status {
		return errStatus
	}
	if kind := checkCommon(want, h); kind != "" {
		return kind
	}
	if want.login {
		return v.checkLogin(body)
	}
	if want.verifyPrefix != nil {
		if _, err := contract.VerifyExpiresIn(body, want.verifyPrefix(n)); err != nil {
			return errVerify
		}
		return ""
	}
	if !bytes.Equal(body, want.body) {
		return errBody
	}
	return ""
}

// checkOneOf verifies a response that may be any of want.oneOf: a refused
// login of the storm. One that logged in is the worst answer, and counted
// apart.
func (v *verifier) checkOneOf(want *expectation, status int, h http.Header, body []byte) string {
	var a *answer
	for i := range want.oneOf {
		if want.oneOf[i].status == status {
			a = &want.oneOf[i]
		}
	}
	switch {
	case a == nil && status == 200 && bytes.HasPrefix(body, []byte(contract.LoginOKPrefix)):
		return errAccepted
	case a == nil:
		return errStatus
	}
	if kind := checkCommon(want, h); kind != "" {
		return kind
	}
	if a.challenge != "" {
		if w := h.Values("WWW-Authenticate"); len(w) != 1 || w[0] != a.challenge {
			return errChallenge
		}
	}
	if a.retryAfter {
		if _, err := contract.RetryAfter(h.Values("Retry-After")); err != nil {
			return errRetryAfter
		}
	}
	if !bytes.Equal(body, a.body) {
		return errBody
	}
	return ""
}

// checkCommon checks the headers every answer of a case has: Cache-Control,
// Content-Type and, where the server must close, the close.
func checkCommon(want *expectation, h http.Header) string {
	if cc := h.Values("Cache-Control"); len(cc) != 1 || cc[0] != contract.CacheControl {
		return errCacheControl
	}
	if ct := h.Values("Content-Type"); len(ct) != 1 || ct[0] != want.contentType {
		return errContentType
	}
	if want.connClose && h.Get(closedHeader) == "" {
		return errNotClosed
	}
	return ""
}

// checkLogin verifies a successful login body byte for byte around the
// token, the token's form (contract.LoginToken), and that it was never
// seen before.
func (v *verifier) checkLogin(body []byte) string {
	tok, err := contract.LoginToken(body)
	switch {
	case errors.Is(err, contract.ErrTokenVersion):
		return errTokenVersion
	case err != nil: // the body's shape, or a token that is not 32 lowercase hex
		return errTokenFormat
	}
	var raw [16]byte
	hex.Decode(raw[:], tok) // checked above
	if !v.tokens.add(raw) {
		return errTokenRepeated
	}
	return ""
}

// tokenSet is a compact set of 16-byte tokens: open addressing over a flat
// array of 16-byte slots, at most 3/4 full, so about 21 to 43 bytes a token
// and no pointers for the garbage collector to scan. The all-zero token
// marks an empty slot; it is never a valid UUIDv4.
type tokenSet struct {
	slots [][2]uint64
	n     int
}

func newTokenSet() *tokenSet { return &tokenSet{slots: make([][2]uint64, 1<<16)} }

// add inserts t and reports whether it was new.
func (s *tokenSet) add(t [16]byte) bool {
	k := [2]uint64{binary.LittleEndian.Uint64(t[:8]), binary.LittleEndian.Uint64(t[8:])}
	if k == [2]uint64{} {
		return false
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	if !s.insert(k) {
		return false
	}
	s.n++
	return true
}

// reserve grows the set now, if need be, so that n more tokens fit
// without growing it (and rehashing every token) in the middle of a run.
func (s *tokenSet) reserve(n int) {
	for (s.n+n)*4 > len(s.slots)*3 {
		s.grow()
	}
}

func (s *tokenSet) insert(k [2]uint64) bool {
	mask := uint64(len(s.slots) - 1)
	// Fibonacci hashing of both halves: the top bits of the product
	// spread even tokens that are not random.
	h := (k[0]*0x9e3779b97f4a7c15 ^ k[1]) * 0xbf58476d1ce4e5b9
	for i := (h >> 32) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case [2]uint64{}:
			s.slots[i] = k
			return true
		case k:
			return false
		}
	}
}

func (s *tokenSet) grow() {
	old := s.slots
	s.slots = make([][2]uint64, 2*len(old))
	for _, k := range old {
		if k != [2]uint64{} {
			s.insert(k)
		}
	}
}

// Len is the number of distinct tokens seen.
func (s *tokenSet) Len() int { return s.n }
