package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"northd/internal/events"
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

// subscriber is the north server a request's bearer token says it is, or
// false once the request has been answered with the refusal.
func (s *subsystem) subscriber(ctx *fasthttp.RequestCtx) (push.Owner, bool) {
	buf := verifyBuffersPool.Get().(*verifyBuffers)
	defer verifyBuffersPool.Put(buf)
	_, v, ok := s.liveToken(ctx, &s.metrics.subscriptionChecks, buf.username[:0])
	return push.Owner{Username: string(v.Username), IP: v.IP}, ok
}

// subscriptionOf is the north server and the subscription id of a request
// to /north/subscriptions/ID/…, or false once it has been answered (a
// refused token, or 404 with webhooks off).
func (s *subsystem) subscriptionOf(ctx *fasthttp.RequestCtx) (push.Owner, string, bool) {
	o, ok := s.subscriber(ctx)
	if !ok {
		return o, "", false
	}
	if s.push == nil {
		answerJSON(ctx, fasthttp.StatusNotFound, subscriptionNotFound)
		return o, "", false
	}
	id, _ := ctx.UserValue("id").(string)
	return o, id, true
}

// handleSubscribe answers POST /north/subscriptions {"url", "types"?}:
// 201 {"code":0,"id","secret"} once the url took a signed
// subscription.verify event. The secret is shown this once.
func (s *subsystem) handleSubscribe(ctx *fasthttp.RequestCtx) {
	o, ok := s.subscriber(ctx)
	if !ok {
		return
	}
	if s.push == nil {
		answerJSON(ctx, fasthttp.StatusForbidden, webhooksOffBody)
		return
	}
	var req struct {
		URL   *string  `json:"url"`
		Types []string `json:"types"`
	}
	body := ctx.PostBody()
	if len(body) > subscriptionBodyLimit {
		answerProblem(ctx, fasthttp.StatusRequestEntityTooLarge, "the body is larger than "+strconv.Itoa(subscriptionBodyLimit)+" bytes")
		return
	}
	if err := strictUnmarshal(body, &req); err != nil {
		answerProblem(ctx, fasthttp.StatusBadRequest, `the body is not {"url": "http://IP:PORT/PATH", "types": ["..."]}: `+err.Error())
		return
	}
	if req.URL == nil || *req.URL == "" {
		answerProblem(ctx, fasthttp.StatusBadRequest, `url is required: where to POST your events, http://YOUR-LOGIN-IP:PORT/PATH`)
		return
	}
	if len(req.Types) > maxSubscriptionTypes {
		answerProblem(ctx, fasthttp.StatusBadRequest, "types names at most "+strconv.Itoa(maxSubscriptionTypes)+" event types; leave it out for every type")
		return
	}
	for _, t := range req.Types {
		if !events.ValidType(t) {
			answerProblem(ctx, fasthttp.StatusBadRequest, "types: "+strconv.Quote(t)+" is not an event type (letters, digits and . _ : / - only, at most 64 bytes)")
			return
		}
	}
	slices.Sort(req.Types)
	view, secret, err := s.push.Create(ctx, o, *req.URL, slices.Compact(req.Types))
	if err != nil {
		s.answerSubscriptionError(ctx, err)
		return
	}
	answerValue(ctx, fasthttp.StatusCreated, struct {
		Code   int    `json:"code"`
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}{0, view.ID, secret})
}

// handleSubscriptions answers GET /north/subscriptions: the caller's own,
// without secrets.
func (s *subsystem) handleSubscriptions(ctx *fasthttp.RequestCtx) {
	o, ok := s.subscriber(ctx)
	if !ok {
		return
	}
	views := []push.View{}
	if s.push != nil {
		views = append(views, s.push.List(o)...)
	}
	answerValue(ctx, fasthttp.StatusOK, struct {
		Code          int         `json:"code"`
		Subscriptions []push.View `json:"subscriptions"`
	}{0, views})
}

// handleUnsubscribe answers DELETE /north/subscriptions/ID.
func (s *subsystem) handleUnsubscribe(ctx *fasthttp.RequestCtx) {
	o, id, ok := s.subscriptionOf(ctx)
	if !ok {
		return
	}
	if err := s.push.Delete(ctx, o, id); err != nil {
		s.answerSubscriptionError(ctx, err)
		return
	}
	answerJSON(ctx, fasthttp.StatusOK, subscriptionDeleted)
}

// handleRotateSecret answers POST /north/subscriptions/ID/rotate-secret: a
// new secret, shown this once; the old one signs too for 24 h.
func (s *subsystem) handleRotateSecret(ctx *fasthttp.RequestCtx) {
	o, id, ok := s.subscriptionOf(ctx)
	if !ok {
		return
	}
	secret, err := s.push.Rotate(ctx, o, id)
	if err != nil {
		s.answerSubscriptionError(ctx, err)
		return
	}
	answerValue(ctx, fasthttp.StatusOK, struct {
		Code   int    `json:"code"`
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}{0, id, secret})
}

// handleEnableSubscription answers POST /north/subscriptions/ID/enable: a
// disabled subscription delivers again, from its cursor.
func (s *subsystem) handleEnableSubscription(ctx *fasthttp.RequestCtx) {
	o, id, ok := s.subscriptionOf(ctx)
	if !ok {
		return
	}
	view, err := s.push.Enable(ctx, o, id)
	if err != nil {
		s.answerSubscriptionError(ctx, err)
		return
	}
	answerValue(ctx, fasthttp.StatusOK, struct {
		Code         int       `json:"code"`
		Subscription push.View `json:"subscription"`
	}{0, view})
}

func (s *subsystem) answerSubscriptionError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, push.ErrOff):
		answerJSON(ctx, fasthttp.StatusForbidden, webhooksOffBody)
	case errors.Is(err, push.ErrNotFound):
		answerJSON(ctx, fasthttp.StatusNotFound, subscriptionNotFound)
	case errors.Is(err, push.ErrTooMany):
		answerJSON(ctx, fasthttp.StatusTooManyRequests, tooManySubscriptions)
	case errors.Is(err, push.ErrVerifiersBusy):
		ctx.Response.Header.SetCanonical(headerRetryAfter, retryAfterOne)
		answerJSON(ctx, fasthttp.StatusServiceUnavailable, verifiersBusy)
	case errors.Is(err, push.ErrTooFast):
		ctx.Response.Header.SetCanonical(headerRetryAfter, retryAfterOne)
		answerJSON(ctx, fasthttp.StatusTooManyRequests, subscribingTooFast)
	case errors.Is(err, push.ErrNotDisabled):
		answerJSON(ctx, fasthttp.StatusConflict, notDisabledBody)
	case errors.Is(err, push.ErrShuttingDown), errors.Is(err, events.ErrUnavailable):
		ctx.Response.Header.SetCanonical(headerRetryAfter, retryAfterOne)
		answerJSON(ctx, fasthttp.StatusServiceUnavailable, subscriptionShutdown)
	default:
		if _, bad := errors.AsType[*webhooks.URLError](err); bad {
			answerProblem(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		if _, bad := errors.AsType[*push.VerifyError](err); bad {
			answerProblem(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		s.log.Error("webhook subscription failed", "subsystem", s.name, "err", err)
		ctx.Response.Header.SetCanonical(headerRetryAfter, retryAfterOne)
		answerJSON(ctx, fasthttp.StatusServiceUnavailable, subscriptionShutdown)
	}
}

// answerProblem answers status with code 1 and description.
func answerProblem(ctx *fasthttp.RequestCtx, status int, description string) {
	answerJSON(ctx, status, wire.AppendFailureBody(nil, 1, false, description))
}

func answerValue(ctx *fasthttp.RequestCtx, status int, v any) {
	body, _ := json.Marshal(v)
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(body)
}

// serveSubscriptions answers GET /north/subscriptions on the admin
// listener: every subsystem's webhook subscriptions with their state,
// cursor, lag, last attempt and last error (never a secret).
func serveSubscriptions(w http.ResponseWriter, subsystems []*subsystem) {
	type report struct {
		Name          string      `json:"name"`
		Webhooks      bool        `json:"webhooks"` // -push-allow lists a network
		Subscriptions []push.View `json:"subscriptions"`
	}
	out := struct {
		Subsystems []report `json:"subsystems"`
	}{Subsystems: []report{}}
	for _, s := range subsystems {
		r := report{Name: s.name, Webhooks: s.push != nil, Subscriptions: []push.View{}}
		if s.push != nil {
			r.Subscriptions = append(r.Subscriptions, s.push.All()...)
		}
		out.Subsystems = append(out.Subsystems, r)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
