package main

import (
	"testing"

	"github.com/valyala/fasthttp"

	"northd/internal/push"
)

// The answers of a subscribe refused for now say when to retry.
func TestSubscribeAnswersRetryLater(t *testing.T) {
	s := &subsystem{}
	for _, c := range []struct {
		err        error
		status     int
		retryAfter string
		body       string
	}{
		{push.ErrVerifiersBusy, 503, "1", `{"code": 4, "description": "every check of a new subscription's url is in flight; retry after the Retry-After seconds"}`},
		{push.ErrTooFast, 429, "1", `{"code": 3, "description": "you are subscribing too fast: a north server's urls are checked one a second after the first few; retry after the Retry-After seconds"}`},
		{push.ErrTooMany, 429, "", `{"code": 3, "description": "too many webhook subscriptions: delete one of yours (DELETE /north/subscriptions/ID) first"}`},
	} {
		ctx := new(fasthttp.RequestCtx)
		s.answerSubscriptionError(ctx, c.err)
		if got := ctx.Response.StatusCode(); got != c.status || string(ctx.Response.Header.Peek("Retry-After")) != c.retryAfter || string(ctx.Response.Body()) != c.body {
			t.Errorf("%v: %d Retry-After %q %s\nwant %d Retry-After %q %s", c.err, got, ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body(), c.status, c.retryAfter, c.body)
		}
	}
}
