package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"northd/internal/testdeps"
)

func TestRunHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"-h"}, testdeps.NoEnv, &out); err != ErrHelp {
		t.Fatalf("Parse -h: %v, want ErrHelp", err)
	}
	help := out.String()
	fs, _, _ := newFlagSet(new(Config))
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		names = append(names, f.Name)
		if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `( |$)`).MatchString(help) {
			t.Errorf("-h has no line for -%s", f.Name)
		}
		if _, usage := flag.UnquoteUsage(f); !strings.Contains(help, "\t"+usage) {
			t.Errorf("-h does not explain -%s as %q", f.Name, usage)
		}
	})
	if !strings.Contains(help, "NORTHD_MAX_BODY_SIZE") {
		t.Errorf("-h does not say how flags are set in the environment")
	}
	// A flag added or removed is a change to document: docs/operating.md's
	// flag table, which TestOperatingGuideListsEveryFlag holds to the FlagSet.
	want := []string{
		"admin", "admin-public", "admin-token-file", "auth-cache-ttl", "client-ip-header", "drain-delay",
		"event-heartbeat", "event-log-bytes", "event-max-bytes", "event-max-streams", "event-queue",
		"event-retention", "event-retry", "event-streams-per-token", "event-write-timeout", "idle-timeout",
		"insecure-open", "ipv6-prefix", "listen", "log-format", "log-level", "login-failure-window",
		"max-body-size", "max-conns", "max-conns-per-ip", "max-ips-per-user", "max-login-failures",
		"max-user-login-failures", "pprof", "prefork", "proxy-protocol", "proxy-protocol-from", "push-allow",
		"push-batch", "push-ca", "push-disable-after", "push-lease", "push-max-backoff", "push-max-subscriptions", "push-rate", "push-secret-key-file", "push-timeout",
		"push-workers", "read-timeout", "reduce-memory", "registry-max", "reuseport", "shutdown-timeout", "store",
		"store-timeout", "tls-cert", "tls-key", "token-ttl", "trusted-proxies", "users", "version",
		"write-timeout",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("the flags are\n%s\nthis test knows\n%s", strings.Join(names, " "), strings.Join(want, " "))
	}
}

// TestEnvironmentCountsEmptyValues: a variable set to "" counts, as its
// flag given "" would (main reads the environment with os.LookupEnv).
func TestEnvironmentCountsEmptyValues(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		admin string
		err   string // the usage error, or "" for none
	}{
		{"unset", nil, nil, "127.0.0.1:9100", ""},
		{"empty", nil, map[string]string{"NORTHD_ADMIN": ""}, "", ""},
		{"off", nil, map[string]string{"NORTHD_ADMIN": "off"}, "", ""},
		{"an address", nil, map[string]string{"NORTHD_ADMIN": "127.0.0.1:9200"}, "127.0.0.1:9200", ""},
		{"the flag wins over empty", []string{"-admin", "127.0.0.1:9300"}, map[string]string{"NORTHD_ADMIN": ""}, "127.0.0.1:9300", ""},
		{"empty where a number is needed", nil, map[string]string{"NORTHD_MAX_BODY_SIZE": ""}, "", `invalid value "" for NORTHD_MAX_BODY_SIZE: parse error`},
		{"NORTHD_VERSION is not -version", nil, map[string]string{"NORTHD_VERSION": "1.2.3"}, "127.0.0.1:9100", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(tt.args, testdeps.EnvFrom(tt.env), io.Discard)
			var usage UsageError
			switch {
			case tt.err != "":
				if !errors.As(err, &usage) || err.Error() != tt.err {
					t.Fatalf("error %v, want the usage error %q", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case cfg.Admin != tt.admin:
				t.Errorf("admin %q, want %q", cfg.Admin, tt.admin)
			}
		})
	}
}

// An attempt must end well within the lease it is made under: a
// -push-timeout of half -push-lease or more is refused at start, saying
// what to set.
// -push-max-backoff caps the retry schedule's waits: a test or a receiver
// known to come back fast need not wait the schedule's hour.
func TestPushMaxBackoff(t *testing.T) {
	if cfg, err := Parse(nil, testdeps.NoEnv, io.Discard); err != nil || cfg.Push.MaxBackoff != time.Hour {
		t.Errorf("the default: %v %v, want 1h", cfg.Push.MaxBackoff, err)
	}
	if cfg, err := Parse([]string{"-push-max-backoff", "2s"}, testdeps.NoEnv, io.Discard); err != nil || cfg.Push.MaxBackoff != 2*time.Second {
		t.Errorf("-push-max-backoff 2s: %v %v", cfg.Push.MaxBackoff, err)
	}
	_, err := Parse([]string{"-push-max-backoff", "0s"}, testdeps.NoEnv, io.Discard)
	if want := "-push-timeout, -push-disable-after and -push-max-backoff must be positive"; err == nil || err.Error() != want {
		t.Errorf("-push-max-backoff 0s: %v, want %q", err, want)
	}
}

func TestPushTimeoutWellUnderTheLease(t *testing.T) {
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{nil, ""}, // the defaults
		{[]string{"-push-lease", "1s", "-push-timeout", "499ms"}, ""},
		{[]string{"-push-lease", "1s", "-push-timeout", "500ms"}, "-push-timeout (500ms) must be less than half of -push-lease (1s): an attempt must end well within the lease that makes the delivery this instance's; set -push-timeout below 500ms or -push-lease above 1s"},
		{[]string{"-push-lease", "10s", "-push-timeout", "10s"}, "-push-timeout (10s) must be less than half of -push-lease (10s): an attempt must end well within the lease that makes the delivery this instance's; set -push-timeout below 5s or -push-lease above 20s"},
	} {
		_, err := Parse(tt.args, testdeps.NoEnv, io.Discard)
		var usage UsageError
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.err != "" && (!errors.As(err, &usage) || err.Error() != tt.err):
			t.Errorf("%q: %v, want the usage error %q", tt.args, err, tt.err)
		}
	}
}

// TestPreforkRefusesTheMemoryStore: each child of -prefork has its own
// memory, so with -store memory a verify or logout that lands on another
// child than its login fails. northd refuses the pair at start (exit 2),
// with a line that says what to give instead.
func TestPreforkRefusesTheMemoryStore(t *testing.T) {
	for _, args := range [][]string{
		{"-prefork", "-listen", "127.0.0.1:8000"},
		{"-prefork", "-listen", "127.0.0.1:8000", "-store", "memory"},
	} {
		_, err := Parse(args, testdeps.NoEnv, io.Discard)
		var usage UsageError
		const want = "-prefork needs a shared store: each child would keep its own tokens, so a verify or logout that reaches another child would fail; give -store redis://host:port/db"
		if !errors.As(err, &usage) || err.Error() != want {
			t.Errorf("%v: got %v, want the usage error %q", args, err, want)
		}
	}
	if _, err := Parse([]string{"-prefork", "-listen", "127.0.0.1:8000", "-store", "redis://127.0.0.1:6379/0"}, testdeps.NoEnv, io.Discard); err != nil {
		t.Errorf("-prefork with a Redis store: %v", err)
	}
}

// TestMaxConnsGiven: -max-conns counts as given on the command line or in
// the environment, and only then is it kept above the descriptor limit.
func TestMaxConnsGiven(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, false},
		{[]string{"-max-conns", "1000"}, nil, true},
		{nil, map[string]string{"NORTHD_MAX_CONNS": "1000"}, true},
	} {
		cfg, err := Parse(tt.args, testdeps.EnvFrom(tt.env), io.Discard)
		if err != nil || cfg.MaxConnsGiven != tt.want {
			t.Errorf("%v %v: given %v, %v; want %v", tt.args, tt.env, cfg.MaxConnsGiven, err, tt.want)
		}
	}
}
