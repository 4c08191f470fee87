package admin

import (
	"crypto/subtle"
	"net/http"
	"os"
	"strings"

	"northd/internal/config"
	"northd/internal/httpx"
)

// ReadTokens reads -admin-token-file: one secret a line, at least 16
// characters; blank lines and lines starting with # are skipped. No file:
// no secret, and the admin listener, loopback then, asks for none.
func ReadTokens(file string) ([][]byte, error) {
	if file == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, config.Usagef("cannot read -admin-token-file: %v", err)
	}
	var secrets [][]byte
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if len(line) < 16 {
				return nil, config.Usagef("-admin-token-file %s: a secret is %d characters; use at least 16 (openssl rand -hex 32 makes one)", file, len(line))
			}
			secrets = append(secrets, []byte(line))
		}
	}
	if len(secrets) == 0 {
		return nil, config.Usagef("-admin-token-file %s holds no secret: put one per line (openssl rand -hex 32 makes one)", file)
	}
	return secrets, nil
}

// RequireToken answers 401 to a request presenting none of secrets,
// whatever its route: the reads tell as much as the writes do (north
// servers' ips, urls and last errors, the process's command line and
// memory), and a route added later is covered without a thought. Unknown
// paths are 401 too, so that the listener says nothing of what it serves.
// The admin listener serves no /healthz or /readyz (the subsystems' ports
// do, for the balancer's probes), so no route is left open. Without
// secrets it is h.
func RequireToken(secrets [][]byte, h http.Handler) http.Handler {
	if len(secrets) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !presents(r.Header.Values("Authorization"), secrets) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="northd-admin"`)
			httpx.WriteFailure(w, http.StatusUnauthorized, 2, "the admin listener needs Authorization: Bearer with a secret from -admin-token-file, on every route (a Prometheus scrape sends it with authorization: credentials_file)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// presents reports whether the one Authorization header presents one of
// the secrets, compared in constant time, each of them: how long the check
// takes does not tell which, or how much of one, matched.
func presents(values []string, secrets [][]byte) bool {
	if len(values) != 1 {
		return false
	}
	scheme, secret, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	ok := 0
	for _, s := range secrets {
		ok |= subtle.ConstantTimeCompare([]byte(secret), s)
	}
	return ok == 1
}
