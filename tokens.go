package main

import (
	"net/netip"
	"northd/internal/wire"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

var headerAuthorization = []byte("Authorization")

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

// handleVerify answers GET /north/verify: whether the bearer token is live
// on this subsystem, whose it is and how long it has left.
func (s *subsystem) handleVerify(ctx *fasthttp.RequestCtx) {
	token, problem := bearerToken(&ctx.Request.Header)
	if problem != wire.BearerOK {
		s.refuseToken(ctx, &s.metrics.verifications, problem)
		return
	}
	var name [wire.MaxUsernameLen + 1]byte
	var username []byte
	var ip netip.Addr
	var expiresIn int64 // seconds, rounded up
	var result verifyResult
	if s.store != nil {
		user, addr, expires, res, err := s.store.verify(s.keys, token, ctx.Time())
		if err != nil {
			s.refuseStoreDown(ctx, false)
			return
		}
		username, ip, result = append(name[:0], user...), addr, res
		expiresIn = int64((expires.Sub(ctx.Time()) + time.Second - 1) / time.Second)
	} else {
		now := ctx.Time().UnixNano()
		var expires int64
		username, ip, expires, result = s.registry.verify(token, now, name[:0])
		expiresIn = (expires - now + int64(time.Second) - 1) / int64(time.Second)
	}
	switch result {
	case tokenUnknown:
		s.refuseToken(ctx, &s.metrics.verifications, wire.BearerUnknown)
		return
	case tokenHasExpired:
		s.refuseToken(ctx, &s.metrics.verifications, wire.BearerExpired)
		return
	}
	var body [128 + 6*wire.MaxUsernameLen]byte
	s.metrics.verifications[wire.BearerOK].Inc()
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(wire.AppendVerifyOK(body[:0], username, ip, expiresIn))
}

// handleLogout answers POST /north/logout: the bearer token stops
// verifying at once.
func (s *subsystem) handleLogout(ctx *fasthttp.RequestCtx) {
	token, problem := bearerToken(&ctx.Request.Header)
	if problem != wire.BearerOK {
		s.refuseToken(ctx, &s.metrics.logouts, problem)
		return
	}
	var ended bool
	if s.store != nil {
		var err error
		if ended, err = s.store.logout(s.keys, token); err != nil {
			s.refuseStoreDown(ctx, false)
			return
		}
	} else {
		ended = s.registry.logout(token, ctx.Time().UnixNano())
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
