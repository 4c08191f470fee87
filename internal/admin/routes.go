package admin

import (
	"net/http"
	"slices"
	"strings"

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
	methods := make(map[string][]string) // by path
	for _, rt := range routes {
		pattern := rt.Path
		if rt.Method != "" {
			pattern = rt.Method + " " + rt.Path
			methods[rt.Path] = append(methods[rt.Path], rt.Method)
			if rt.Method == http.MethodGet {
				// A GET pattern takes HEAD too.
				methods[rt.Path] = append(methods[rt.Path], http.MethodHead)
			}
		}
		mux.Handle(pattern, rt.Handler)
	}
	allow := make(map[string]string, len(methods))
	for path, ms := range methods {
		ms = append(ms, http.MethodOptions)
		slices.Sort(ms)
		allow[path] = strings.Join(slices.Compact(ms), ", ")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// pprof's answers, and the mux's redirects, too.
		w.Header().Set("Cache-Control", "no-store")
		if h, pattern := mux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		methods, known := allow[r.URL.Path]
		switch {
		case !known:
			w.Header().Set("Content-Type", httpx.HTMLType)
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(httpx.NotFoundBody))
		case r.Method == http.MethodOptions:
			w.Header().Set("Allow", methods)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", methods)
			w.Header().Set("Content-Type", httpx.TextType)
			w.WriteHeader(http.StatusMethodNotAllowed)
			w.Write([]byte(httpx.MethodNotAllowedBody))
		}
	})
}
