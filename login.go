package main

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
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
		r[p] = appendLoginFailure(nil, desc)
	}
	return &r
}

// appendLoginFailure appends the seed's failure shape with json.dumps'
// spacing: {"code": 1, "token": "", "description": "..."}.
func appendLoginFailure(dst []byte, description string) []byte {
	quoted, _ := json.Marshal(description) // a string always marshals
	dst = append(dst, `{"code": 1, "token": "", "description": `...)
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

// handleLogin answers POST /north/login: it decodes the body, gives the
// north server a token, records it in the registry under its ip (from the
// body, or else the client address).
func (s *subsystem) handleLogin(ctx *fasthttp.RequestCtx) {
	lr := loginRequestPool.Get().(*loginRequest)
	problem := lr.decode(ctx.PostBody())
	if problem != loginOK {
		loginRequestPool.Put(lr)
		s.rejectLogin(ctx, fasthttp.StatusBadRequest, problem)
		return
	}
	ip := lr.addr
	if !ip.IsValid() {
		ip = s.clientAddr(ctx)
	}
	token := newToken()
	s.registry.remember(ip, lr.username, token, ctx.Time())
	loginRequestPool.Put(lr)
	s.metrics.logins.Inc()

	var body [loginOKLen]byte
	b := append(body[:0], loginOKPrefix...)
	b = appendHex(b, token[:])
	b = append(b, loginOKSuffix...)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(b)
}

// rejectLogin answers with the failure shape for problem.
func (s *subsystem) rejectLogin(ctx *fasthttp.RequestCtx, status int, problem loginProblem) {
	s.metrics.loginRejections[problem].Inc()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(s.rejections[problem])
}

// clientAddr is the address the registry records for a login without an
// ip: the connection's peer, or, when that peer is a trusted proxy, the
// client it reports in X-Forwarded-For or X-Real-IP.
func (s *subsystem) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	return s.proxies.clientAddr(addrOf(ctx.RemoteAddr()), &ctx.Request.Header)
}
