package admin

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"northd/internal/config"
)

func TestReadTokens(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, text string
		want       []string
		problem    string
	}{
		{"one a line", "# the scraper's\n0123456789abcdef\n\n  fedcba9876543210fedcba  \n", []string{"0123456789abcdef", "fedcba9876543210fedcba"}, ""},
		{"short", "0123456789abcde\n", nil, "-admin-token-file " + filepath.Join(dir, "short") + ": a secret is 15 characters; use at least 16 (openssl rand -hex 32 makes one)"},
		{"none", "# nothing yet\n\n", nil, "-admin-token-file " + filepath.Join(dir, "none") + " holds no secret: put one per line (openssl rand -hex 32 makes one)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name)
			if err := os.WriteFile(file, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			secrets, err := ReadTokens(file)
			if tt.problem != "" {
				var usage config.UsageError
				if err == nil || err.Error() != tt.problem || !errors.As(err, &usage) {
					t.Fatalf("ReadTokens: %v, want the usage error %q", err, tt.problem)
				}
				return
			}
			if err != nil || len(secrets) != len(tt.want) {
				t.Fatalf("ReadTokens: %q, %v; want %q", secrets, err, tt.want)
			}
			for i := range secrets {
				if string(secrets[i]) != tt.want[i] {
					t.Errorf("secret %d: %q, want %q", i, secrets[i], tt.want[i])
				}
			}
		})
	}
	if secrets, err := ReadTokens(""); secrets != nil || err != nil {
		t.Errorf("ReadTokens of no file: %q, %v; want none", secrets, err)
	}
}

// RequireToken lets through only a request with one Authorization header
// presenting one of the secrets.
func TestRequireToken(t *testing.T) {
	h := RequireToken([][]byte{[]byte("0123456789abcdef"), []byte("fedcba9876543210")}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}))
	const refusal = `{"code": 2, "description": "the admin listener needs Authorization: Bearer with a secret from -admin-token-file, on every route (a Prometheus scrape sends it with authorization: credentials_file)"}`
	for _, tt := range []struct {
		name          string
		authorization []string
		status        int
		body          string
	}{
		{"first secret", []string{"Bearer 0123456789abcdef"}, 200, "served"},
		{"second, scheme in capitals", []string{"BEARER fedcba9876543210"}, 200, "served"},
		{"none", nil, 401, refusal},
		{"a secret's prefix", []string{"Bearer 0123456789abcde"}, 401, refusal},
		{"another scheme", []string{"Basic 0123456789abcdef"}, 401, refusal},
		{"two headers", []string{"Bearer 0123456789abcdef", "Bearer 0123456789abcdef"}, 401, refusal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/anything", nil)
			for _, a := range tt.authorization {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || w.Body.String() != tt.body {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.body)
			}
			if tt.status == 401 && (w.Header().Get("WWW-Authenticate") != `Bearer realm="northd-admin"` || w.Header().Get("Content-Type") != "application/json; charset=utf-8") {
				t.Errorf("refusal headers %v", w.Header())
			}
		})
	}
	// Without secrets (a loopback listener, no -admin-token-file), none
	// is asked for.
	w := httptest.NewRecorder()
	RequireToken(nil, http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 404 {
		t.Errorf("without secrets: %d, want the handler's own 404", w.Code)
	}
}
