package admin

import (
	"net/http"

	"northd/internal/httpx"
)

// Route is one route of the admin listener. A Path ending in / takes the
// paths below it too (pprof's); a Method of "" takes every method.
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
}

// Handler serves routes. A known path asked with a method it does not
// take gets 405 and OPTIONS gets 204, each with its Allow header, and a
// path no route names gets 404: the bytes the subsystems' ports answer
// them with, so that both listeners refuse alike. Every answer carries
// Cache-Control: no-store.
func Handler(routes []Route) http.Handler {
	mux := http.NewServeMux()
	paths := make(map[string][]string) // by method, as a router lists them
	for _, rt := range routes {
		pattern := rt.Path
		if rt.Method != "" {
			pattern = rt.Method + " " + rt.Path
			paths[rt.Method] = append(paths[rt.Method], rt.Path)
			if rt.Method == http.MethodGet {
				// A GET pattern takes HEAD too.
				paths[http.MethodHead] = append(paths[http.MethodHead], rt.Path)
			}
		}
		mux.Handle(pattern, rt.Handler)
	}
	allow := httpx.AllowHeaders(paths)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// pprof's answers, and the mux's redirects, too.
		w.Header().Set("Cache-Control", "no-store")
		if h, pattern := mux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		methods, known := allow[r.URL.Path]
		known = known && r.URL.Path != "*" // net/http answers OPTIONS * itself
		switch {
		case !known:
			w.Header().Set("Content-Type", httpx.HTMLType)
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(httpx.NotFoundBody))
		case r.Method == http.MethodOptions:
			w.Header().Set("Allow", string(methods))
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", string(methods))
			w.Header().Set("Content-Type", httpx.TextType)
			w.WriteHeader(http.StatusMethodNotAllowed)
			w.Write([]byte(httpx.MethodNotAllowedBody))
		}
	})
}
