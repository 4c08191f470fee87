package main

import (
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/store"
	"northd/internal/wire"
)

// bearerToken reads the token from the request's one Authorization header,
// "Bearer <32 lowercase hex digits>", the form /north/login hands out. The
// scheme is case-insensitive (RFC 7235); the token is not. It stays here
// rather than in wire, which parses the header's value, because counting
// the headers takes fasthttp's own.
func bearerToken(h *fasthttp.RequestHeader) ([16]byte, wire.BearerProblem) {
	values := h.PeekAll(fasthttp.HeaderAuthorization)
	switch len(values) {
	case 0:
		return [16]byte{}, wire.BearerMissing
	case 1:
	default:
		return [16]byte{}, wire.BearerSeveral
	}
	return wire.ParseBearer(values[0])
}

var headerWWWAuthenticate = []byte("WWW-Authenticate")

// verifyBuffers are the memory handleVerify writes its answer in, pooled:
// on the stack the username buffer would move to the heap, passed through
// the store interface, and the body's 1.7 KB would be zeroed on every
// request (a fifth of verify's time).
type verifyBuffers struct {
	username [wire.MaxUsernameLen + 1]byte
	// Room for the longest answer: 256 escaped username bytes, a
	// 45-byte ip and 20 digits.
	body [192 + 6*wire.MaxUsernameLen]byte
}

var verifyBuffersPool = sync.Pool{New: func() any { return new(verifyBuffers) }}

// liveToken is the request's bearer token and what the store says of it
// when it is live, its username appended to usernameDst; or false once the
// request has been answered with the refusal (401, 400 or 503). checks
// counts the outcome, live included.
func (s *subsystem) liveToken(ctx *fasthttp.RequestCtx, checks *[wire.BearerProblemCount]*metrics.Counter, usernameDst []byte) ([16]byte, store.Token, bool) {
	token, problem := bearerToken(&ctx.Request.Header)
	if problem != wire.BearerOK {
		s.refuseToken(ctx, checks, problem)
		return token, store.Token{}, false
	}
	v, err := s.store.Verify(token, ctx.Time(), usernameDst)
	if err != nil {
		s.refuseStoreDown(ctx, false)
		return token, v, false
	}
	switch v.Result {
	case store.Unknown:
		s.refuseToken(ctx, checks, wire.BearerUnknown)
		return token, v, false
	case store.Expired:
		s.refuseToken(ctx, checks, wire.BearerExpired)
		return token, v, false
	}
	checks[wire.BearerOK].Inc()
	return token, v, true
}

// handleVerify answers GET /north/verify: whether the bearer token is live
// on this subsystem, whose it is and how long it has left.
func (s *subsystem) handleVerify(ctx *fasthttp.RequestCtx) {
	buf := verifyBuffersPool.Get().(*verifyBuffers)
	defer verifyBuffersPool.Put(buf)
	_, v, ok := s.liveToken(ctx, &s.metrics.verifications, buf.username[:0])
	if !ok {
		return
	}
	expiresIn := (v.Expires - ctx.Time().UnixNano() + int64(time.Second) - 1) / int64(time.Second) // rounded up
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(wire.AppendVerifyOK(buf.body[:0], v.Username, v.IP, expiresIn))
}

// handleLogout answers POST /north/logout: the bearer token stops
// verifying at once.
func (s *subsystem) handleLogout(ctx *fasthttp.RequestCtx) {
	token, problem := bearerToken(&ctx.Request.Header)
	if problem != wire.BearerOK {
		s.refuseToken(ctx, &s.metrics.logouts, problem)
		return
	}
	ended, err := s.store.Logout(token, ctx.Time())
	if err != nil {
		s.refuseStoreDown(ctx, false)
		return
	}
	if !ended {
		s.refuseToken(ctx, &s.metrics.logouts, wire.BearerUnknown)
		return
	}
	s.metrics.logouts[wire.BearerOK].Inc()
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(wire.LoggedOutBody)
}

var retryAfterOne = []byte("1")

// refuseStoreDown answers a request the shared store could not serve in
// time: 503, to be retried, on this instance or another.
func (s *subsystem) refuseStoreDown(ctx *fasthttp.RequestCtx, login bool) {
	s.metrics.storeUnavailable.Inc()
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.Response.Header.SetCanonical(headerRetryAfter, retryAfterOne)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	if login {
		ctx.Response.SetBodyRaw(wire.StoreDownLoginBody)
	} else {
		ctx.Response.SetBodyRaw(wire.StoreDownTokenBody)
	}
}

func (s *subsystem) refuseToken(ctx *fasthttp.RequestCtx, checks *[wire.BearerProblemCount]*metrics.Counter, problem wire.BearerProblem) {
	checks[problem].Inc()
	r := problem.Refusal()
	ctx.SetStatusCode(r.Status)
	ctx.Response.Header.SetCanonical(headerWWWAuthenticate, r.WWWAuthenticate)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(r.Body)
}
