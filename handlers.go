package main

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/valyala/fasthttp"

	"northd/internal/httpx"
	"northd/internal/netx"
	"northd/internal/wire"
)

var (
	headerCacheControl = []byte("Cache-Control")
	noStore            = []byte("no-store")
	contentTypeHTML    = []byte(httpx.HTMLType)
	contentTypeText    = []byte(httpx.TextType)

	homeBody             = []byte(`<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`)
	notFoundBody         = []byte(httpx.NotFoundBody)
	methodNotAllowedBody = []byte(httpx.MethodNotAllowedBody)
	healthyBody          = []byte("ok\n")
	readyBody            = []byte("ready\n")
	drainingBody         = []byte("draining: this instance is shutting down\n")
	storeDownBody        = []byte("store unavailable: this instance cannot reach -store\n")
)

// handleHome answers GET, HEAD and POST / with the seed's home page; the
// query string and any body are ignored. fasthttp leaves out the body for
// HEAD itself.
func handleHome(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentTypeBytes(contentTypeHTML)
	ctx.Response.SetBodyRaw(homeBody)
}

func handleNotFound(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.Response.Header.SetContentTypeBytes(contentTypeHTML)
	ctx.Response.SetBodyRaw(notFoundBody)
}

// handleMethodNotAllowed runs after the router has set the Allow header.
func handleMethodNotAllowed(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	ctx.Response.Header.SetContentTypeBytes(contentTypeText)
	ctx.Response.SetBodyRaw(methodNotAllowedBody)
}

// handleOptions runs after the router has set the Allow header.
func handleOptions(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// handleHealthz says the process is alive and serving HTTP.
func handleHealthz(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentTypeBytes(contentTypeText)
	ctx.Response.SetBodyRaw(healthyBody)
}

// handleReadyz says whether a load balancer should send traffic here: 503
// from the moment shutdown begins, so the instance leaves rotation while it
// still serves what reaches it.
func (s *subsystem) handleReadyz(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentTypeBytes(contentTypeText)
	if s.draining.Load() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyRaw(drainingBody)
		return
	}
	if !s.store.Ready() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.SetBodyRaw(storeDownBody)
		return
	}
	ctx.Response.SetBodyRaw(readyBody)
}

// handleRequestError answers a request fasthttp could not read. A body over
// the limit gets the login failure shape with 413, and the connection is
// closed gently so the client still reads it; everything else gets
// fasthttp's own answers.
func (s *subsystem) handleRequestError(ctx *fasthttp.RequestCtx, err error) {
	var smallBuffer *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.refuseLargeBody(ctx)
	case errors.As(err, &smallBuffer):
		ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
	default:
		// Only when it is logged: the client's address as a string, and
		// the arguments, cost allocations.
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("refused a malformed request", "subsystem", s.name, "client", ctx.RemoteAddr().String(), "err", err)
		}
		ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
	}
	// After ctx.Error, which resets the response.
	ctx.Response.Header.SetCanonical(headerCacheControl, noStore)
	s.metrics.requests.ObserveUnread(int(routeUnreadable), ctx)
}

// handleExpect refuses an "Expect: 100-continue" request whose announced
// body is over the limit before the client sends it.
func (s *subsystem) handleExpect(ctx *fasthttp.RequestCtx) int {
	if ctx.Request.Header.ContentLength() > s.maxBodySize {
		ctx.Response.Header.SetCanonical(headerCacheControl, noStore)
		s.refuseLargeBody(ctx)
		s.metrics.requests.ObserveUnread(int(routeUnreadable), ctx)
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

func (s *subsystem) refuseLargeBody(ctx *fasthttp.RequestCtx) {
	netx.LingerOnClose(ctx.Conn())
	s.rejectLogin(ctx, fasthttp.StatusRequestEntityTooLarge, wire.ProblemBodyTooLarge)
}
