package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WithWriteDeadlines gives each admin answer writeTimeout to be written,
// and a pprof profile or trace, which runs for ?seconds= before it writes,
// that long as well. The admin http.Server has no WriteTimeout of its own
// for this reason: net/http/pprof refuses ?seconds= at or above the
// server's WriteTimeout, and a CPU profile's default is 30 s.
func WithWriteDeadlines(h http.Handler, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := writeTimeout
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			if s, err := strconv.Atoi(r.URL.Query().Get("seconds")); err == nil && s > 0 {
				d += time.Duration(s) * time.Second
			} else if strings.HasSuffix(r.URL.Path, "/profile") {
				d += 30 * time.Second // pprof's default
			}
		}
		// An error means the connection cannot take deadlines (never
		// so for TCP); the answer is then written without one.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}
