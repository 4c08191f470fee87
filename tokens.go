package main

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/store"
)

// bearerProblem names why a request's Authorization header holds no usable
// token.
type bearerProblem uint8

const (
	bearerOK bearerProblem = iota
	bearerMissing
	bearerSeveral
	bearerNotBearer
	bearerMalformed
	bearerUnknown // well-formed, but not a live token here
	bearerExpired
	bearerProblemCount
)

// bearerReasons label token checks in metrics.
var bearerReasons = [bearerProblemCount]string{"valid", "missing", "several_headers", "not_bearer", "malformed", "unknown", "expired"}

var headerAuthorization = []byte("Authorization")

// bearerToken reads the token from the request's one Authorization header,
// "Bearer <32 lowercase hex digits>", the form /north/login hands out. The
// scheme is case-insensitive (RFC 7235); the token is not.
func bearerToken(h *fasthttp.RequestHeader) ([16]byte, bearerProblem) {
	values := h.PeekAll(fasthttp.HeaderAuthorization)
	switch len(values) {
	case 0:
		return [16]byte{}, bearerMissing
	case 1:
	default:
		return [16]byte{}, bearerSeveral
	}
	return parseBearer(values[0])
}

// parseBearer parses an Authorization header's value.
func parseBearer(v []byte) ([16]byte, bearerProblem) {
	const scheme = "bearer"
	var token [16]byte
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return token, bearerNotBearer
	}
	rest := v[len(scheme):]
	if len(rest) > 0 && rest[0] != ' ' {
		return token, bearerNotBearer // "Bearerx…" is another scheme
	}
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	if len(rest) != 32 {
		return token, bearerMalformed
	}
	for i := range token {
		hi, ok1 := lowerHexDigit(rest[2*i])
		lo, ok2 := lowerHexDigit(rest[2*i+1])
		if !ok1 || !ok2 {
			return token, bearerMalformed
		}
		token[i] = hi<<4 | lo
	}
	return token, bearerOK
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// asciiEqualFold compares b with lower, which is lowercase ASCII.
func asciiEqualFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// tokenRefusal is the answer to a request whose token does not verify,
// built once.
type tokenRefusal struct {
	status          int
	wwwAuthenticate []byte
	body            []byte
}

// tokenRefusals answer each bearerProblem as RFC 6750 says: 401 with a
// Bearer challenge, which names invalid_token once a token was offered,
// and 400 invalid_request for a request that cannot be read as one.
var tokenRefusals = func() (r [bearerProblemCount]tokenRefusal) {
	const challenge = `Bearer realm="northd"`
	invalid := []byte(challenge + `, error="invalid_token"`)
	r[bearerMissing] = tokenRefusal{401, []byte(challenge), appendFailureBody(nil, 2, false, "send the token from /north/login as Authorization: Bearer TOKEN")}
	r[bearerSeveral] = tokenRefusal{400, []byte(challenge + `, error="invalid_request"`), appendFailureBody(nil, 1, false, "send one Authorization header, not several")}
	r[bearerNotBearer] = tokenRefusal{401, []byte(challenge), appendFailureBody(nil, 2, false, "Authorization must use the Bearer scheme: Authorization: Bearer TOKEN")}
	r[bearerMalformed] = tokenRefusal{401, invalid, appendFailureBody(nil, 2, false, "the token must be the 32 lowercase hex digits /north/login returned")}
	r[bearerUnknown] = tokenRefusal{401, invalid, appendFailureBody(nil, 2, false, "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again")}
	r[bearerExpired] = tokenRefusal{401, invalid, appendFailureBody(nil, 2, false, "the token has expired; log in again")}
	return r
}()

var (
	headerWWWAuthenticate = []byte("WWW-Authenticate")
	loggedOutBody         = []byte(`{"code": 0, "description": "logged out"}`)
)

// usernameBufPool holds the buffers handleVerify has a username appended
// to.
var usernameBufPool = sync.Pool{New: func() any { return new([maxUsernameLen + 1]byte) }}

// handleVerify answers GET /north/verify: whether the bearer token is live
// on this subsystem, whose it is and how long it has left.
func (s *subsystem) handleVerify(ctx *fasthttp.RequestCtx) {
	token, problem := bearerToken(&ctx.Request.Header)
	if problem != bearerOK {
		s.refuseToken(ctx, &s.metrics.verifications, problem)
		return
	}
	// The username is copied into pooled memory: a buffer on the stack
	// would move to the heap, passed through the store interface.
	name := usernameBufPool.Get().(*[maxUsernameLen + 1]byte)
	defer usernameBufPool.Put(name)
	v, err := s.store.Verify(token, ctx.Time(), name[:0])
	if err != nil {
		s.refuseStoreDown(ctx, false)
		return
	}
	switch v.Result {
	case store.Unknown:
		s.refuseToken(ctx, &s.metrics.verifications, bearerUnknown)
		return
	case store.Expired:
		s.refuseToken(ctx, &s.metrics.verifications, bearerExpired)
		return
	}
	expiresIn := int64((v.Expires.Sub(ctx.Time()) + time.Second - 1) / time.Second) // rounded up
	var body [128 + 6*maxUsernameLen]byte
	b := append(body[:0], `{"code": 0, "description": "valid", "username": `...)
	b = appendJSONString(b, v.Username)
	b = append(b, `, "ip": "`...)
	b = v.IP.AppendTo(b)
	b = append(b, `", "expires_in": `...)
	b = strconv.AppendInt(b, expiresIn, 10)
	b = append(b, '}')
	s.metrics.verifications[bearerOK].Inc()
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(b)
}

// handleLogout answers POST /north/logout: the bearer token stops
// verifying at once.
func (s *subsystem) handleLogout(ctx *fasthttp.RequestCtx) {
	token, problem := bearerToken(&ctx.Request.Header)
	if problem != bearerOK {
		s.refuseToken(ctx, &s.metrics.logouts, problem)
		return
	}
	ended, err := s.store.Logout(token, ctx.Time())
	if err != nil {
		s.refuseStoreDown(ctx, false)
		return
	}
	if !ended {
		s.refuseToken(ctx, &s.metrics.logouts, bearerUnknown)
		return
	}
	s.metrics.logouts[bearerOK].Inc()
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(loggedOutBody)
}

var (
	storeDownLoginBody = appendFailureBody(nil, 4, true, "the token store is unavailable; retry after the Retry-After seconds")
	storeDownTokenBody = appendFailureBody(nil, 4, false, "the token store is unavailable; retry after the Retry-After seconds")
	retryAfterOne      = []byte("1")
)

// refuseStoreDown answers a request the shared store could not serve in
// time: 503, to be retried, on this instance or another.
func (s *subsystem) refuseStoreDown(ctx *fasthttp.RequestCtx, login bool) {
	s.metrics.storeUnavailable.Inc()
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.Response.Header.SetCanonical(headerRetryAfter, retryAfterOne)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	if login {
		ctx.Response.SetBodyRaw(storeDownLoginBody)
	} else {
		ctx.Response.SetBodyRaw(storeDownTokenBody)
	}
}

func (s *subsystem) refuseToken(ctx *fasthttp.RequestCtx, checks *[bearerProblemCount]*metrics.Counter, problem bearerProblem) {
	checks[problem].Inc()
	r := &tokenRefusals[problem]
	ctx.SetStatusCode(r.status)
	ctx.Response.Header.SetCanonical(headerWWWAuthenticate, r.wwwAuthenticate)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(r.body)
}

// appendJSONString appends s as a JSON string, exactly as encoding/json
// writes it. Printable ASCII that needs no escape, the usual username, is
// copied as it is without allocating; anything else goes through
// encoding/json.
func appendJSONString(dst, s []byte) []byte {
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
