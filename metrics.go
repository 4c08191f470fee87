package main

import (
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/auth"
	"northd/internal/requestmetrics"
	"northd/internal/wire"
)

// route labels requests in metrics.
type route uint8

const (
	routeHome route = iota
	routeLogin
	routeVerify
	routeLogout
	routeEvents
	routeSubscriptions
	routeHealthz
	routeReadyz
	routeNotFound
	routeMethodNotAllowed
	routeOptions
	routeUnreadable // fasthttp could not read the request
	routeCount
)

var routeNames = [routeCount]string{"home", "login", "verify", "logout", "events", "subscriptions", "healthz", "readyz", "not_found", "method_not_allowed", "options", "unreadable"}

// subsystemMetrics are one subsystem's series in the process's metrics set:
// its requests (requestmetrics), and why logins and tokens were refused.
// Counting allocates nothing.
type subsystemMetrics struct {
	set      *metrics.Set // the series are in
	requests *requestmetrics.Counter

	loginRejections    [wire.ProblemCount]*metrics.Counter
	loginFailures      [auth.OutcomeCount]*metrics.Counter // credentials refused; auth.OK unused
	claimRefusals      [claimAnswerCount]*metrics.Counter  // right credentials, an ip the login may not claim
	verifications      [wire.BearerProblemCount]*metrics.Counter
	logouts            [wire.BearerProblemCount]*metrics.Counter
	eventChecks        [wire.BearerProblemCount]*metrics.Counter
	subscriptionChecks [wire.BearerProblemCount]*metrics.Counter
	storeUnavailable   *metrics.Counter
}

// subsystemLabel is the label every series of the subsystem named name
// carries, whoever registers it (the listener, the store, the requests).
func subsystemLabel(name string) string { return `subsystem="` + name + `"` }

func newSubsystemMetrics(set *metrics.Set, subsystem string) *subsystemMetrics {
	label := subsystemLabel(subsystem)
	m := &subsystemMetrics{set: set, requests: requestmetrics.New(set, label, routeNames[:])}
	for p := wire.ProblemEmptyBody; p < wire.ProblemCount; p++ {
		m.loginRejections[p] = set.NewCounter(`northd_login_rejections_total{` + label + `,reason="` + p.Reason() + `"}`)
	}
	for o := auth.WrongPassword; o < auth.OutcomeCount; o++ {
		m.loginFailures[o] = set.NewCounter(`northd_login_failures_total{` + label + `,reason="` + o.Reason() + `"}`)
	}
	for a := claimRefusedAnswer; a < claimAnswerCount; a++ {
		m.claimRefusals[a] = set.NewCounter(`northd_login_failures_total{` + label + `,reason="` + claimAnswerReasons[a] + `"}`)
	}
	for p := wire.BearerOK; p < wire.BearerProblemCount; p++ {
		m.verifications[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="verify",result="` + p.Reason() + `"}`)
		m.logouts[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="logout",result="` + p.Reason() + `"}`)
		m.eventChecks[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="events",result="` + p.Reason() + `"}`)
		m.subscriptionChecks[p] = set.NewCounter(`northd_token_checks_total{` + label + `,route="subscriptions",result="` + p.Reason() + `"}`)
	}
	m.storeUnavailable = set.NewCounter(`northd_store_unavailable_total{` + label + `}`)
	return m
}

// observed wraps h so that each request it answers is counted under rt.
func (s *subsystem) observed(rt route, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		s.metrics.requests.Observe(int(rt), ctx)
	}
}
