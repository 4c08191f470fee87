package main

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

// routes maps every request a subsystem answers. Each handler is wrapped by
// observed, which counts it under its route; every response, including the
// router's own, carries Cache-Control: no-store.
func (s *subsystem) routes() fasthttp.RequestHandler {
	r := router.New()
	// The contract answers 404 for every path it does not name, so no
	// redirects to a "fixed" path.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false

	home := s.observed(routeHome, handleHome)
	r.GET("/", home)
	r.HEAD("/", home)
	r.POST("/", home)
	r.POST("/north/login", s.observed(routeLogin, s.handleLogin))
	r.GET("/north/verify", s.observed(routeVerify, s.handleVerify))
	r.POST("/north/logout", s.observed(routeLogout, s.handleLogout))

	healthz := s.observed(routeHealthz, handleHealthz)
	r.GET("/healthz", healthz)
	r.HEAD("/healthz", healthz)
	readyz := s.observed(routeReadyz, s.handleReadyz)
	r.GET("/readyz", readyz)
	r.HEAD("/readyz", readyz)

	r.NotFound = s.observed(routeNotFound, handleNotFound)
	r.MethodNotAllowed = s.observed(routeMethodNotAllowed, handleMethodNotAllowed)
	r.GlobalOPTIONS = s.observed(routeOptions, handleOptions)

	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetCanonical(headerCacheControl, noStore)
		r.Handler(ctx)
	}
}
