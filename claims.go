package main

import (
	"github.com/valyala/fasthttp"

	"northd/internal/httpx"
	"northd/internal/wire"
)

// Who may claim an ip is internal/auth's to say (its claims.go). Here are
// the 403 and 409 answers to a login whose credentials were right but
// whose ip it may not claim.

// claimAnswer is a refused claim, answered with its status and body.
type claimAnswer uint8

const (
	claimRefusedAnswer claimAnswer = iota // 403: the ip is off the user's list
	ipHeldAnswer                          // 409: another username holds the ip's live token
	claimAnswerCount
)

// claimAnswerReasons label them in northd_login_failures_total.
var claimAnswerReasons = [claimAnswerCount]string{"ip_not_allowed", "ip_held_by_another_user"}

var claimAnswers = [claimAnswerCount]struct {
	status int
	body   []byte
}{
	{403, wire.AppendFailureBody(nil, 5, true, "this username may not log in for that ip: the users file lists the addresses it may claim; send one of them as ip, or ask the operator to add this one")},
	{409, wire.AppendFailureBody(nil, 6, true, "another username holds a live token for that ip; send your own north server's ip, or wait until that token is logged out or expires")},
}

// refuseClaim answers a login whose credentials were right but whose ip
// it may not claim.
func (s *subsystem) refuseClaim(ctx *fasthttp.RequestCtx, a claimAnswer) {
	s.metrics.claimRefusals[a].Inc()
	ctx.SetStatusCode(claimAnswers[a].status)
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	ctx.Response.SetBodyRaw(claimAnswers[a].body)
}
