package main

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"northd/internal/httpx"
	"northd/internal/wire"
)

// verifyBuffers are the memory handleVerify writes its answer in, pooled:
// on the stack the username buffer would move to the heap, passed through
// the store interface, and the body's 1.7 KB would be zeroed on every
// request (a fifth of verify's time).
type verifyBuffers struct {
	username httpx.Username
	// Room for the longest answer: 256 escaped username bytes, a
	// 45-byte ip and 20 digits.
	body [192 + 6*wire.MaxUsernameLen]byte
}

var verifyBuffersPool = sync.Pool{New: func() any { return new(verifyBuffers) }}

// handleVerify answers GET /north/verify: whether the bearer token is live
// on this subsystem, whose it is and how long it has left.
func (s *subsystem) handleVerify(ctx *fasthttp.RequestCtx) {
	buf := verifyBuffersPool.Get().(*verifyBuffers)
	defer verifyBuffersPool.Put(buf)
	_, v, ok := s.tokens.Live(ctx, &s.metrics.verifications, buf.username[:0])
	if !ok {
		return
	}
	expiresIn := (v.Expires - ctx.Time().UnixNano() + int64(time.Second) - 1) / int64(time.Second) // rounded up
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	ctx.Response.SetBody(wire.AppendVerifyOK(buf.body[:0], v.Username, v.IP, expiresIn))
}

// handleLogout answers POST /north/logout: the bearer token stops
// verifying at once.
func (s *subsystem) handleLogout(ctx *fasthttp.RequestCtx) {
	token, problem := httpx.BearerToken(&ctx.Request.Header)
	if problem != wire.BearerOK {
		s.tokens.Refuse(ctx, &s.metrics.logouts, problem)
		return
	}
	ended, err := s.store.Logout(token, ctx.Time())
	if err != nil {
		s.tokens.RefuseStoreDown(ctx, wire.StoreDownTokenBody)
		return
	}
	if !ended {
		s.tokens.Refuse(ctx, &s.metrics.logouts, wire.BearerUnknown)
		return
	}
	s.metrics.logouts[wire.BearerOK].Inc()
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	ctx.Response.SetBodyRaw(wire.LoggedOutBody)
}
