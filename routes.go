package main

import (
	"bytes"
	_ "embed"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"northd/internal/admin"
	"northd/internal/events/eventshttp"
	"northd/internal/httpx"
	"northd/internal/push/pushhttp"
)

// router mounts the subsystem's routes, each of them a path and method of
// docs/openapi.yaml (TestRoutesAreDocumented); routes adds the answers to
// the rest.
func (s *subsystem) router() *router.Router {
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
	r.GET("/north/events", s.observed(routeEvents, eventshttp.Stream(eventshttp.StreamOptions{
		Tokens:      s.tokens,
		Checks:      &s.metrics.eventChecks,
		Hub:         s.events,
		Retry:       s.streamRetry,
		UserTimeout: s.streamUserTimeout,
		Log:         s.log,
	})))
	subs := pushhttp.Options{Tokens: s.tokens, Checks: &s.metrics.subscriptionChecks, Pusher: s.push, Subsystem: s.name, Log: s.log}
	r.POST("/north/subscriptions", s.observed(routeSubscriptions, pushhttp.Subscribe(subs)))
	r.GET("/north/subscriptions", s.observed(routeSubscriptions, pushhttp.List(subs)))
	r.DELETE("/north/subscriptions/{id}", s.observed(routeSubscriptions, pushhttp.Unsubscribe(subs)))
	r.POST("/north/subscriptions/{id}/rotate-secret", s.observed(routeSubscriptions, pushhttp.RotateSecret(subs)))
	r.POST("/north/subscriptions/{id}/enable", s.observed(routeSubscriptions, pushhttp.Enable(subs)))

	healthz := s.observed(routeHealthz, handleHealthz)
	r.GET("/healthz", healthz)
	r.HEAD("/healthz", healthz)
	readyz := s.observed(routeReadyz, s.handleReadyz)
	r.GET("/readyz", readyz)
	r.HEAD("/readyz", readyz)
	return r
}

// routes maps every request a subsystem answers. Each handler is wrapped by
// observed, which counts it under its route; every response, including the
// router's own, carries Cache-Control: no-store.
func (s *subsystem) routes() fasthttp.RequestHandler {
	r := s.router()

	// A known path asked with another method gets 405, and OPTIONS gets
	// 204, each with an Allow header built here once: the router would
	// build it anew for every such answer.
	r.HandleMethodNotAllowed = false
	r.HandleOPTIONS = false
	allow := httpx.AllowHeaders(r.List())
	templates := routeTemplates(allow)
	notFound := s.observed(routeNotFound, handleNotFound)
	methodNotAllowed := s.observed(routeMethodNotAllowed, handleMethodNotAllowed)
	options := s.observed(routeOptions, handleOptions)
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		if string(ctx.RequestURI()) == "*" {
			path = ctx.RequestURI() // OPTIONS *: the whole server
		}
		methods, known := allow[string(path)]
		if !known {
			methods, known = allowOfTemplate(templates, path)
		}
		switch {
		case !known:
			notFound(ctx)
		case ctx.IsOptions():
			ctx.Response.Header.SetCanonical(headerAllow, methods)
			options(ctx)
		default:
			ctx.Response.Header.SetCanonical(headerAllow, methods)
			methodNotAllowed(ctx)
		}
	}

	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.SetCanonical(headerCacheControl, noStore)
		r.Handler(ctx)
	}
}

// adminRouteList is every route the admin listener answers: the operator's
// endpoints, on a listener that is never one of the public subsystem
// ports; each is a path and method of docs/openapi.yaml
// (TestRoutesAreDocumented).
func adminRouteList(subsystems []*subsystem, set *metrics.Set, maxEventData int, withPprof bool, log *slog.Logger) []admin.Route {
	views := make([]admin.Subsystem, len(subsystems))
	targets := make([]eventshttp.Target, len(subsystems))
	for i, s := range subsystems {
		views[i] = admin.Subsystem{Name: s.name, ListenAddr: s.listenAddr, Store: s.store, Push: s.push}
		targets[i] = eventshttp.Target{Name: s.name, Label: subsystemLabel(s.name), Store: s.store, Events: s.events.Log()}
	}
	routes := []admin.Route{
		{Method: "POST", Path: "/north/events", Handler: eventshttp.Publish(targets, maxEventData, set, log)},
		{Method: "GET", Path: "/metrics", Handler: admin.Metrics(set)},
		{Method: "GET", Path: "/north/servers", Handler: admin.NorthServers(views)},
		{Method: "GET", Path: "/north/subscriptions", Handler: admin.Subscriptions(views)},
		{Method: "GET", Path: "/openapi.yaml", Handler: http.HandlerFunc(serveOpenAPI)},
	}
	if withPprof {
		routes = append(routes,
			admin.Route{Path: "/debug/pprof/", Handler: http.HandlerFunc(pprof.Index)},
			admin.Route{Path: "/debug/pprof/cmdline", Handler: http.HandlerFunc(pprof.Cmdline)},
			admin.Route{Path: "/debug/pprof/profile", Handler: http.HandlerFunc(pprof.Profile)},
			admin.Route{Path: "/debug/pprof/symbol", Handler: http.HandlerFunc(pprof.Symbol)},
			admin.Route{Path: "/debug/pprof/trace", Handler: http.HandlerFunc(pprof.Trace)},
		)
	}
	return routes
}

// adminRoutes maps every request the admin listener answers: adminRouteList,
// with 404, 405 and OPTIONS as a subsystem answers them (admin.Handler).
// With secrets (-admin-token-file), each of them only to a caller
// presenting one; each answer within writeTimeout (-write-timeout), a
// pprof profile that long past its ?seconds=.
func adminRoutes(subsystems []*subsystem, set *metrics.Set, maxEventData int, withPprof bool, secrets [][]byte, writeTimeout time.Duration, log *slog.Logger) http.Handler {
	routes := adminRouteList(subsystems, set, maxEventData, withPprof, log)
	return admin.WithWriteDeadlines(admin.RequireToken(secrets, admin.Handler(routes)), writeTimeout)
}

// openAPIDocument is docs/openapi.yaml, the description of both
// listeners, built into the binary so that what an instance serves is the
// document of its own version.
//
//go:embed docs/openapi.yaml
var openAPIDocument []byte

// serveOpenAPI answers GET /openapi.yaml on the admin listener with the
// document, as application/yaml (RFC 9512), for a client generator or a
// mock server to read from the instance itself.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(openAPIDocument)
}

var headerAllow = []byte("Allow")

// routeTemplate is a route with a parameter, such as
// /north/subscriptions/{id}/enable, and its Allow header.
type routeTemplate struct {
	path  string
	allow []byte
}

// routeTemplates picks, once, the paths of allow that have a parameter.
func routeTemplates(allow map[string][]byte) []routeTemplate {
	var out []routeTemplate
	for p, methods := range allow {
		if strings.IndexByte(p, '{') >= 0 {
			out = append(out, routeTemplate{p, methods})
		}
	}
	return out
}

// allowOfTemplate finds the Allow header of the route template that path
// fills in, so that a known path with a parameter gets 405 and OPTIONS
// like the others. It reads path in place: a 404 allocates nothing.
func allowOfTemplate(templates []routeTemplate, path []byte) ([]byte, bool) {
	for _, t := range templates {
		if fillsTemplate(path, t.path) {
			return t.allow, true
		}
	}
	return nil, false
}

// fillsTemplate reports whether path has template's segments, a {name}
// segment standing for any one non-empty segment.
func fillsTemplate(path []byte, template string) bool {
	for len(path) > 0 && len(template) > 0 {
		if path[0] != '/' || template[0] != '/' {
			return false
		}
		path, template = path[1:], template[1:]
		pEnd := bytes.IndexByte(path, '/')
		if pEnd < 0 {
			pEnd = len(path)
		}
		tEnd := strings.IndexByte(template, '/')
		if tEnd < 0 {
			tEnd = len(template)
		}
		seg, tseg := path[:pEnd], template[:tEnd]
		if len(tseg) > 1 && tseg[0] == '{' && tseg[len(tseg)-1] == '}' {
			if len(seg) == 0 {
				return false
			}
		} else if string(seg) != tseg {
			return false
		}
		path, template = path[pEnd:], template[tEnd:]
	}
	return len(path) == 0 && len(template) == 0
}
