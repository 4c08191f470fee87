package redisconn

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// A -store URL that cannot be used is named in Open's error without its
// password; one that cannot be used as written is an InvalidURLError, for
// the operator to fix.
func TestOpenErrorsHideThePassword(t *testing.T) {
	unreachable := testdeps.FreeAddr(t)
	tests := []struct {
		name, url, want string
		invalid         bool
	}{
		{"bad port", "redis://north:hunter2-secret@127.0.0.1:notaport/0",
			"invalid -store redis://(rest not shown: it may hold a password): not a valid URL (percent-encode any of : / @ ? # in the user name or password) (want memory, redis://[user:pass@]host:port/db, rediss://… or host:port,host:port for a cluster)", true},
		{"bad database", "redis://north:hunter2-secret@127.0.0.1:6379/nine",
			`invalid -store redis://north:xxxxx@127.0.0.1:6379/nine: redis: invalid database number: "nine" (want memory, redis://[user:pass@]host:port/db, rediss://… or host:port,host:port for a cluster)`, true},
		{"slash in the password", "redis://north:hunt/er2-secret@127.0.0.1:6379/0", "invalid -store redis://", true},
		{"unreachable", "redis://north:hunter2-secret@" + unreachable + "/0", "cannot reach the store redis://north:xxxxx@" + unreachable + "/0: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(tt.url, metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				c.Close()
				t.Fatalf("Open(%q) connected", tt.url)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want it to begin with %q", err, tt.want)
			}
			for _, secret := range []string{"hunter2-secret", "hunt", "er2-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows %q", err, secret)
				}
			}
			if _, invalid := err.(*InvalidURLError); invalid != tt.invalid {
				t.Errorf("error %T, InvalidURLError: %v, want %v", err, invalid, tt.invalid)
			}
		})
	}
}
