package main

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNorthdConfigurations starts the northd servers the pairs use, as
// compare starts them, with the users file and certificate compare
// makes: each must serve the contract (over HTTPS for northd-tls), and the
// verify route's login must give a token that verifies. It builds northd
// from the repository root, so it is skipped with -short.
func TestNorthdConfigurations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs northd")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "northd"), ".")
	build.Dir = "../../.." // the repository root: the server's module
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building northd: %v\n%s", err, out)
	}
	auth, err := makeAuthFiles()
	if err != nil {
		t.Fatal(err)
	}
	defer auth.remove()
	o := &options{bin: bin, auth: auth, serverProcs: 1}
	if o.redisSkip = redisMissing(); o.redisSkip == "" {
		if o.redis, err = startRedis(nil); err != nil {
			t.Fatal(err)
		}
		defer func() {
			o.redis.stop()
			if _, err := os.Stat(o.redis.dir); !os.IsNotExist(err) {
				t.Errorf("redis-server's directory left behind: %v", err)
			}
		}()
	}
	for _, name := range []string{"northd", "northd-users", "northd-tls", "northd-redis"} {
		t.Run(name, func(t *testing.T) {
			if name == "northd-redis" && o.redis == nil {
				if os.Getenv("CI") == "true" {
					t.Fatal(o.redisSkip + "; CI must run this test")
				}
				t.Skip(o.redisSkip)
			}
			var spec serverSpec
			for _, s := range specs {
				if s.name == name {
					spec = s
				}
			}
			r, skip, err := start(o, spec)
			if err != nil || skip != "" {
				t.Fatalf("start: %v %s", err, skip)
			}
			defer r.stop()
			if want := map[bool]string{true: "https://", false: "http://"}[spec.tls]; !strings.HasPrefix(r.baseURL(), want) {
				t.Errorf("base URL %s, want %s…", r.baseURL(), want)
			}
			notes, err := checkContract(r)
			if err != nil {
				t.Fatalf("contract: %v\n%s", err, r.exitReport())
			}
			if len(notes) > 0 {
				t.Errorf("departs from the contract: %v", notes)
			}
			if spec.tls && !strings.HasPrefix(r.tlsInfo, "TLS 1.") {
				t.Errorf("TLS info %q", r.tlsInfo)
			}
			args, err := loginForVerify(r)
			if err != nil || len(args) != 1 || len(args[0]) != 32 {
				t.Fatalf("loginForVerify = %q, %v", args, err)
			}
			// A second login from the verify ip replaces the first token.
			again, err := loginForVerify(r)
			if err != nil || again[0] == args[0] {
				t.Fatalf("second loginForVerify = %q, %v", again, err)
			}
			if spec.redis {
				checkStoreCounts(t, o.redis, r)
			}
		})
	}
	if _, err := os.Stat(auth.users); err != nil {
		t.Errorf("users file gone before the end: %v", err)
	}
}

// checkStoreCounts: Redis's counts of one login made by the login probe
// are northd's commands (CONFIG RESETSTAT and INFO left out), and MONITOR
// sees where each came from, northd sending at least one (its readiness
// PINGs aside).
func checkStoreCounts(t *testing.T, rs *redisServer, r *running) {
	t.Helper()
	for _, route := range []string{"login", "verify"} {
		do, err := probeRequest(r, route)
		if err != nil {
			t.Fatalf("%s probe: %v", route, err)
		}
		if err := rs.resetStats(); err != nil {
			t.Fatal(err)
		}
		if err := do(); err != nil {
			t.Fatal(err)
		}
		calls, err := rs.commandStats()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, c := range calls {
			n += c
		}
		if n == 0 {
			t.Errorf("%s: Redis counted no command of northd's: %v", route, calls)
		}
		origins, err := rs.monitorOrigins(do)
		if err != nil {
			t.Fatalf("%s: monitor: %v", route, err)
		}
		sent := false
		for c, o := range origins {
			if c == "ping" {
				// northd's readiness probe, every 250 ms, not the
				// request's: it may fall in MONITOR's window and not
				// in the counted one.
				continue
			}
			sent = sent || slices.Contains(o, fromClient)
			counted := slices.ContainsFunc(slices.Collect(maps.Keys(calls)), func(k string) bool { return k == c || strings.HasPrefix(k, c+"|") })
			if !counted {
				t.Errorf("%s: MONITOR saw %s, INFO commandstats did not count it: %v", route, c, calls)
			}
		}
		if !sent {
			t.Errorf("%s: MONITOR saw no command northd sent: %v", route, origins)
		}
		t.Logf("%s: Redis commands %v, from %v", route, calls, origins)
	}
}
