// Package pushhttp is the webhooks' HTTP face on a subsystem's port: the
// /north/subscriptions API by which a north server subscribes a url of
// its own to its events, lists, deletes and enables its subscriptions and
// rotates their secrets. The answers it refuses with are here, beside the
// handlers that send them.
package pushhttp

import (
	"errors"
	"log/slog"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"northd/internal/events"
	"northd/internal/httpx"
	"northd/internal/push"
	"northd/internal/webhooks"
	"northd/internal/wire"
)

// Answers of /north/subscriptions that are the same every time.
var (
	webhooksOffBody      = wire.AppendFailureBody(nil, 5, false, "webhooks are off on this subsystem: the operator has allowed no network for them (-push-allow); read events from GET /north/events instead")
	subscriptionNotFound = wire.AppendFailureBody(nil, 1, false, "no subscription of yours has that id: GET /north/subscriptions lists them")
	tooManySubscriptions = wire.AppendFailureBody(nil, 3, false, "too many webhook subscriptions: delete one of yours (DELETE /north/subscriptions/ID) first")
	notDisabledBody      = wire.AppendFailureBody(nil, 1, false, "the subscription is not disabled: only a disabled one can be enabled")
	subscriptionShutdown = wire.AppendFailureBody(nil, 4, false, "this instance is shutting down; retry after the Retry-After seconds")
	verifiersBusy        = wire.AppendFailureBody(nil, 4, false, "every check of a new subscription's url is in flight; retry after the Retry-After seconds")
	subscribingTooFast   = wire.AppendFailureBody(nil, 3, false, "you are subscribing too fast: a north server's urls are checked one a second after the first few; retry after the Retry-After seconds")
	subscriptionDeleted  = []byte(`{"code": 0, "description": "deleted"}`)
)

// A subscription names at most maxSubscriptionTypes types, in a body of
// at most subscriptionBodyLimit bytes.
const (
	maxSubscriptionTypes  = 64
	subscriptionBodyLimit = 8 << 10
)

// Options are what the subscriptions API uses.
type Options struct {
	Tokens httpx.Tokens
	Checks *httpx.Checks // route="subscriptions"
	Pusher *push.Pusher  // nil: webhooks are off on the subsystem
	// Subsystem names the subsystem in the log.
	Subsystem string
	Log       *slog.Logger
}

// subscriber is the north server a request's bearer token says it is, or
// false once the request has been answered with the refusal.
func (o Options) subscriber(ctx *fasthttp.RequestCtx) (push.Owner, bool) {
	buf := httpx.GetUsername()
	defer httpx.PutUsername(buf)
	_, v, ok := o.Tokens.Live(ctx, o.Checks, buf[:0])
	return push.Owner{Username: string(v.Username), IP: v.IP}, ok
}

// subscriptionOf is the north server and the subscription id of a request
// to /north/subscriptions/{id}/…, or false once it has been answered (a
// refused token, or 404 with webhooks off).
func (o Options) subscriptionOf(ctx *fasthttp.RequestCtx) (push.Owner, string, bool) {
	owner, ok := o.subscriber(ctx)
	if !ok {
		return owner, "", false
	}
	if o.Pusher == nil {
		httpx.AnswerJSON(ctx, fasthttp.StatusNotFound, subscriptionNotFound)
		return owner, "", false
	}
	id, _ := ctx.UserValue("id").(string)
	return owner, id, true
}

// Subscribe answers POST /north/subscriptions {"url", "types"?}: 201
// {"code":0,"id","secret"} once the url took a signed subscription.verify
// event. The secret is shown this once.
func Subscribe(o Options) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		owner, ok := o.subscriber(ctx)
		if !ok {
			return
		}
		if o.Pusher == nil {
			httpx.AnswerJSON(ctx, fasthttp.StatusForbidden, webhooksOffBody)
			return
		}
		var req struct {
			URL   *string  `json:"url"`
			Types []string `json:"types"`
		}
		body := ctx.PostBody()
		if len(body) > subscriptionBodyLimit {
			httpx.AnswerProblem(ctx, fasthttp.StatusRequestEntityTooLarge, "the body is larger than "+strconv.Itoa(subscriptionBodyLimit)+" bytes")
			return
		}
		if err := httpx.StrictUnmarshal(body, &req); err != nil {
			httpx.AnswerProblem(ctx, fasthttp.StatusBadRequest, `the body is not {"url": "http://IP:PORT/PATH", "types": ["..."]}: `+err.Error())
			return
		}
		if req.URL == nil || *req.URL == "" {
			httpx.AnswerProblem(ctx, fasthttp.StatusBadRequest, `url is required: where to POST your events, http://YOUR-LOGIN-IP:PORT/PATH`)
			return
		}
		if len(req.Types) > maxSubscriptionTypes {
			httpx.AnswerProblem(ctx, fasthttp.StatusBadRequest, "types names at most "+strconv.Itoa(maxSubscriptionTypes)+" event types; leave it out for every type")
			return
		}
		for _, t := range req.Types {
			if !events.ValidType(t) {
				httpx.AnswerProblem(ctx, fasthttp.StatusBadRequest, "types: "+strconv.Quote(t)+" is not an event type (letters, digits and . _ : / - only, at most "+strconv.Itoa(events.MaxTypeLen)+" bytes)")
				return
			}
		}
		slices.Sort(req.Types)
		view, secret, err := o.Pusher.Create(ctx, owner, *req.URL, slices.Compact(req.Types))
		if err != nil {
			o.answerError(ctx, err)
			return
		}
		httpx.AnswerValue(ctx, fasthttp.StatusCreated, struct {
			Code   int    `json:"code"`
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}{0, view.ID, secret})
	}
}

// List answers GET /north/subscriptions: the caller's own, without
// secrets.
func List(o Options) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		owner, ok := o.subscriber(ctx)
		if !ok {
			return
		}
		views := []push.View{}
		if o.Pusher != nil {
			views = append(views, o.Pusher.List(owner)...)
		}
		httpx.AnswerValue(ctx, fasthttp.StatusOK, struct {
			Code          int         `json:"code"`
			Subscriptions []push.View `json:"subscriptions"`
		}{0, views})
	}
}

// Unsubscribe answers DELETE /north/subscriptions/{id}.
func Unsubscribe(o Options) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		owner, id, ok := o.subscriptionOf(ctx)
		if !ok {
			return
		}
		if err := o.Pusher.Delete(ctx, owner, id); err != nil {
			o.answerError(ctx, err)
			return
		}
		httpx.AnswerJSON(ctx, fasthttp.StatusOK, subscriptionDeleted)
	}
}

// RotateSecret answers POST /north/subscriptions/{id}/rotate-secret: a
// new secret, shown this once; the old one signs too for 24 h.
func RotateSecret(o Options) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		owner, id, ok := o.subscriptionOf(ctx)
		if !ok {
			return
		}
		secret, err := o.Pusher.Rotate(ctx, owner, id)
		if err != nil {
			o.answerError(ctx, err)
			return
		}
		httpx.AnswerValue(ctx, fasthttp.StatusOK, struct {
			Code   int    `json:"code"`
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}{0, id, secret})
	}
}

// Enable answers POST /north/subscriptions/{id}/enable: a disabled
// subscription delivers again, from its cursor.
func Enable(o Options) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		owner, id, ok := o.subscriptionOf(ctx)
		if !ok {
			return
		}
		view, err := o.Pusher.Enable(ctx, owner, id)
		if err != nil {
			o.answerError(ctx, err)
			return
		}
		httpx.AnswerValue(ctx, fasthttp.StatusOK, struct {
			Code         int       `json:"code"`
			Subscription push.View `json:"subscription"`
		}{0, view})
	}
}

// answerError answers a request the pusher refused with err.
func (o Options) answerError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, push.ErrOff):
		httpx.AnswerJSON(ctx, fasthttp.StatusForbidden, webhooksOffBody)
	case errors.Is(err, push.ErrNotFound):
		httpx.AnswerJSON(ctx, fasthttp.StatusNotFound, subscriptionNotFound)
	case errors.Is(err, push.ErrTooMany):
		httpx.AnswerJSON(ctx, fasthttp.StatusTooManyRequests, tooManySubscriptions)
	case errors.Is(err, push.ErrVerifiersBusy):
		ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, httpx.RetryAfterOne)
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, verifiersBusy)
	case errors.Is(err, push.ErrTooFast):
		ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, httpx.RetryAfterOne)
		httpx.AnswerJSON(ctx, fasthttp.StatusTooManyRequests, subscribingTooFast)
	case errors.Is(err, push.ErrNotDisabled):
		httpx.AnswerJSON(ctx, fasthttp.StatusConflict, notDisabledBody)
	case errors.Is(err, push.ErrShuttingDown), errors.Is(err, events.ErrUnavailable):
		ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, httpx.RetryAfterOne)
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, subscriptionShutdown)
	default:
		if _, bad := errors.AsType[*webhooks.URLError](err); bad {
			httpx.AnswerProblem(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		if _, bad := errors.AsType[*push.VerifyError](err); bad {
			httpx.AnswerProblem(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		o.Log.Error("webhook subscription failed", "subsystem", o.Subsystem, "err", err)
		ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, httpx.RetryAfterOne)
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, subscriptionShutdown)
	}
}
