package main

import (
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"northd/internal/auth"
	"northd/internal/httpx"
	"northd/internal/netx"
	"northd/internal/wire"
)

var loginRequestPool = sync.Pool{New: func() any { return new(wire.LoginRequest) }}

// handleLogin answers POST /north/login: it decodes the body, checks the
// credentials (unless in open mode), gives the north server a token and
// records it in its store under its ip (from the body, or else the
// client address), replacing the token it held. With -users the ip must be
// one the user may claim (internal/auth's claims.go): 403 off its list,
// 409 while another username holds the ip's live token.
func (s *subsystem) handleLogin(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	// The body holds the password: it is zeroed before the request's
	// memory goes back to fasthttp's pools.
	defer clear(body)
	lr := loginRequestPool.Get().(*wire.LoginRequest)
	defer func() {
		lr.Reset() // drops the view of the password with the rest
		loginRequestPool.Put(lr)
	}()
	if problem := lr.Decode(body); problem != wire.LoginOK {
		s.rejectLogin(ctx, fasthttp.StatusBadRequest, problem)
		return
	}
	ip := lr.Addr
	verdict := auth.ClaimOpen
	if s.auth != nil || !ip.IsValid() {
		client := s.clientAddr(ctx)
		if s.auth != nil {
			if outcome, wait := s.auth.Check(client, lr.Username, lr.Password, ctx.Time()); outcome != auth.OK {
				s.refuseCredentials(ctx, outcome, wait)
				return
			}
		}
		if !ip.IsValid() {
			ip = client
		}
		// Only once the password is right, so that the answer tells no
		// one else which ips a user may claim.
		if s.auth != nil {
			if verdict = s.auth.Claim(lr.Username, ip); verdict == auth.ClaimRefused {
				s.refuseClaim(ctx, claimRefusedAnswer)
				return
			}
		}
	}
	// In open mode any username logs in, so a username proves nothing
	// and an ip goes to the latest login, as in the seed.
	takeover := s.auth == nil || verdict == auth.ClaimListed
	token := newToken()
	token, claimed, err := s.store.Login(ip, lr.Username, token, ctx.Time(), takeover)
	if err != nil {
		s.tokens.RefuseStoreDown(ctx, wire.StoreDownLoginBody)
		return
	}
	if !claimed {
		s.refuseClaim(ctx, ipHeldAnswer)
		return
	}
	s.metrics.requests.Login(ctx)

	var b [wire.LoginOKLen]byte
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	ctx.Response.SetBody(wire.AppendLoginOK(b[:0], token))
}

// refuseCredentials answers a login whose credentials were not accepted.
// A wrong password and an unknown username get the same bytes.
func (s *subsystem) refuseCredentials(ctx *fasthttp.RequestCtx, outcome auth.Outcome, wait time.Duration) {
	s.metrics.loginFailures[outcome].Inc()
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	switch outcome {
	case auth.WrongPassword, auth.UnknownUser:
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		ctx.Response.Header.SetCanonical(httpx.HeaderWWWAuthenticate, wire.BearerChallenge)
		ctx.Response.SetBodyRaw(wire.WrongCredentialsBody)
		return
	case auth.HashBusy:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyRaw(wire.HashBusyBody)
	case auth.CheckerDown:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyRaw(wire.CheckerDownBody)
	default:
		ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
		ctx.Response.SetBodyRaw(wire.TooManyFailuresBody)
	}
	var n [20]byte
	ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, strconv.AppendInt(n[:0], int64(retryAfterSeconds(wait)), 10))
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// rejectLogin answers with the failure shape for problem.
func (s *subsystem) rejectLogin(ctx *fasthttp.RequestCtx, status int, problem wire.LoginProblem) {
	s.metrics.loginRejections[problem].Inc()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	ctx.Response.SetBodyRaw(s.rejections[problem])
}

// clientAddr is the address the store records for a login without an
// ip: the connection's peer, or, when that peer is a trusted proxy, the
// client it reports in X-Forwarded-For or X-Real-IP.
func (s *subsystem) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	return s.proxies.ClientAddr(netx.AddrOf(ctx.RemoteAddr()), &ctx.Request.Header)
}
