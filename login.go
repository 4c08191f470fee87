package main

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"northd/internal/netx"
)

var (
	contentTypeJSON = []byte("application/json; charset=utf-8")
	loginOKPrefix   = `{"code": 0, "token": "`
	loginOKSuffix   = `", "description": "success"}`
)

// loginOKLen is the length of every successful login body.
const loginOKLen = len(`{"code": 0, "token": "`) + 32 + len(`", "description": "success"}`)

var loginRequestPool = sync.Pool{New: func() any { return new(loginRequest) }}

// rejectionBodies holds the 400 (and 413) answer for each loginProblem,
// built once so that refusing a login writes a constant.
type rejectionBodies [problemCount][]byte

func newRejectionBodies(maxBodySize int) *rejectionBodies {
	var r rejectionBodies
	for p := problemEmptyBody; p < problemCount; p++ {
		desc := problemDescriptions[p]
		if p == problemBodyTooLarge {
			desc = "request body is larger than " + strconv.Itoa(maxBodySize) + " bytes"
		}
		r[p] = appendFailureBody(nil, 1, true, desc)
	}
	return &r
}

// appendFailureBody appends the seed's failure shape with json.dumps'
// spacing: {"code": N, "token": "", "description": "..."}, without the
// token field for the token routes.
func appendFailureBody(dst []byte, code int, tokenField bool, description string) []byte {
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

// appendHex appends the lowercase hex of b.
func appendHex(dst, b []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, hex.EncodedLen(len(b)))...)
	hex.Encode(dst[n:], b)
	return dst
}

// handleLogin answers POST /north/login: it decodes the body, checks the
// credentials (unless in open mode), gives the north server a token and
// records it in the registry under its ip (from the body, or else the
// client address), replacing the token it held. With -users the ip must be
// one the user may claim (claims.go): 403 off its list, 409 while another
// username holds the ip's live token.
func (s *subsystem) handleLogin(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	// The body holds the password: it is zeroed before the request's
	// memory goes back to fasthttp's pools.
	defer clear(body)
	lr := loginRequestPool.Get().(*loginRequest)
	defer func() {
		lr.reset() // drops the view of the password with the rest
		loginRequestPool.Put(lr)
	}()
	if problem := lr.decode(body); problem != loginOK {
		s.rejectLogin(ctx, fasthttp.StatusBadRequest, problem)
		return
	}
	ip := lr.addr
	verdict := claimOpen
	if s.auth != nil || !ip.IsValid() {
		client := s.clientAddr(ctx)
		if s.auth != nil {
			if outcome, wait := s.auth.check(client, lr.username, lr.password, ctx.Time()); outcome != authOK {
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
			if verdict = s.auth.claim(lr.username, ip); verdict == claimRefused {
				s.refuseClaim(ctx, claimRefusedAnswer)
				return
			}
		}
	}
	// In open mode any username logs in, so a username proves nothing
	// and an ip goes to the latest login, as in the seed.
	takeover := s.auth == nil || verdict == claimListed
	token := newToken()
	claimed := true
	if s.store != nil {
		var err error
		if claimed, err = s.store.login(s.keys, ip, lr.username, token, takeover); err != nil {
			s.refuseStoreDown(ctx, true)
			return
		}
	} else {
		token, claimed = s.registry.login(ip, lr.username, token, ctx.Time(), takeover)
	}
	if !claimed {
		s.refuseClaim(ctx, ipHeldAnswer)
		return
	}
	s.metrics.shardOf(ctx).logins.Add(1)

	var b [loginOKLen]byte
	ok := append(b[:0], loginOKPrefix...)
	ok = appendHex(ok, token[:])
	ok = append(ok, loginOKSuffix...)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(ok)
}

var (
	headerRetryAfter     = []byte("Retry-After")
	loginChallenge       = []byte(`Bearer realm="northd"`)
	wrongCredentialsBody = appendFailureBody(nil, 2, true, "username or password is incorrect")
	// One answer for both limits, so that it does not tell which
	// usernames exist.
	tooManyFailuresBody = appendFailureBody(nil, 3, true, "too many failed logins; wait the Retry-After seconds before trying again")
	hashBusyBody        = appendFailureBody(nil, 4, true, "too many logins are waiting for a password check; retry after the Retry-After seconds")
	checkerDownBody     = appendFailureBody(nil, 4, true, "the password checker is restarting; retry after the Retry-After seconds")
)

// refuseCredentials answers a login whose credentials were not accepted.
// A wrong password and an unknown username get the same bytes.
func (s *subsystem) refuseCredentials(ctx *fasthttp.RequestCtx, outcome authOutcome, wait time.Duration) {
	s.metrics.loginFailures[outcome].Inc()
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	switch outcome {
	case authWrongPassword, authUnknownUser:
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		ctx.Response.Header.SetCanonical(headerWWWAuthenticate, loginChallenge)
		ctx.Response.SetBodyRaw(wrongCredentialsBody)
		return
	case authHashBusy:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyRaw(hashBusyBody)
	case authCheckerDown:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyRaw(checkerDownBody)
	default:
		ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
		ctx.Response.SetBodyRaw(tooManyFailuresBody)
	}
	var n [20]byte
	ctx.Response.Header.SetCanonical(headerRetryAfter, strconv.AppendInt(n[:0], int64(retryAfterSeconds(wait)), 10))
}

// rejectLogin answers with the failure shape for problem.
func (s *subsystem) rejectLogin(ctx *fasthttp.RequestCtx, status int, problem loginProblem) {
	s.metrics.loginRejections[problem].Inc()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(s.rejections[problem])
}

// clientAddr is the address the registry records for a login without an
// ip: the connection's peer, or, when that peer is a trusted proxy, the
// client it reports in X-Forwarded-For or X-Real-IP.
func (s *subsystem) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	return s.proxies.ClientAddr(netx.AddrOf(ctx.RemoteAddr()), &ctx.Request.Header)
}
