package httpx

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/store"
	"northd/internal/wire"
)

// BearerToken reads the token from the request's one Authorization header,
// "Bearer <32 lowercase hex digits>", the form /north/login hands out. The
// scheme is case-insensitive (RFC 7235); the token is not. It is here
// rather than in wire, which parses the header's value, because counting
// the headers takes fasthttp's own.
func BearerToken(h *fasthttp.RequestHeader) ([16]byte, wire.BearerProblem) {
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

// Checks count a route's token checks by outcome, live (wire.BearerOK)
// included: northd_token_checks_total{route=…,result=…}.
type Checks = [wire.BearerProblemCount]*metrics.Counter

// Tokens checks bearer tokens against a subsystem's store and answers the
// requests it refuses.
type Tokens struct {
	Store store.Store
	// StoreUnavailable counts the requests answered 503 because the
	// store did not answer in time.
	StoreUnavailable *metrics.Counter
}

// Live is the request's bearer token and what the store says of it when
// it is live, its username appended to usernameDst; or false once the
// request has been answered with the refusal (401, 400 or 503). checks
// counts the outcome, live included.
func (t Tokens) Live(ctx *fasthttp.RequestCtx, checks *Checks, usernameDst []byte) ([16]byte, store.Token, bool) {
	token, problem := BearerToken(&ctx.Request.Header)
	if problem != wire.BearerOK {
		t.Refuse(ctx, checks, problem)
		return token, store.Token{}, false
	}
	v, err := t.Store.Verify(token, ctx.Time(), usernameDst)
	if err != nil {
		t.RefuseStoreDown(ctx, wire.StoreDownTokenBody)
		return token, v, false
	}
	switch v.Result {
	case store.Unknown:
		t.Refuse(ctx, checks, wire.BearerUnknown)
		return token, v, false
	case store.Expired:
		t.Refuse(ctx, checks, wire.BearerExpired)
		return token, v, false
	}
	checks[wire.BearerOK].Inc()
	return token, v, true
}

// Refuse answers a request whose token is refused for problem, and counts
// it in checks.
func (t Tokens) Refuse(ctx *fasthttp.RequestCtx, checks *Checks, problem wire.BearerProblem) {
	checks[problem].Inc()
	r := problem.Refusal()
	ctx.SetStatusCode(r.Status)
	ctx.Response.Header.SetCanonical(HeaderWWWAuthenticate, r.WWWAuthenticate)
	ctx.Response.Header.SetContentTypeBytes(ContentTypeJSON)
	ctx.Response.SetBodyRaw(r.Body)
}

// RefuseStoreDown answers a request the store could not serve in time:
// 503 with body, to be retried, on this instance or another.
func (t Tokens) RefuseStoreDown(ctx *fasthttp.RequestCtx, body []byte) {
	t.StoreUnavailable.Inc()
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.Response.Header.SetCanonical(HeaderRetryAfter, RetryAfterOne)
	ctx.Response.Header.SetContentTypeBytes(ContentTypeJSON)
	ctx.Response.SetBodyRaw(body)
}

// Username is room for the longest username the store hands back.
type Username [wire.MaxUsernameLen + 1]byte

// usernames are pooled: on the stack the buffer would move to the heap,
// passed through the store interface.
var usernames = sync.Pool{New: func() any { return new(Username) }}

// GetUsername is a buffer for Live's usernameDst, to be given back with
// PutUsername once the handler is done with the username.
func GetUsername() *Username { return usernames.Get().(*Username) }

// PutUsername gives b back.
func PutUsername(b *Username) { usernames.Put(b) }
