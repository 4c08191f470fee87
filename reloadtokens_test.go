package main

import (
	"context"
	"io"
	"os"
	"testing"

	"northd/internal/testdeps"
)

// A reload that removes a user or changes its password ends that user's
// live tokens at once, with either store, and counts them under
// why="user_changed"; a user the reload left alone keeps its token. The
// reload is called as SIGHUP's handler calls it, not through a signal to
// the whole test binary.
func TestReloadEndsTokensOfChangedUsers(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\nbob:"+testdeps.Bcrypt2ySecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\n")
			args := []string{"-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users}
			if store == "redis" {
				args = append(args, "-store", testdeps.StartRedis(t).URL())
			}
			ctx, cancel := context.WithCancel(context.Background())
			srv, err := startInstance(t, ctx, args, testdeps.NoEnv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); srv.wait() })
			base := "http://" + srv.listenAddrs()[0]
			client := clientFrom("127.0.0.1")
			alice := loginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.1"}`)
			alice2 := loginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.2"}`)
			bob := loginToken(t, client, base, `{"username":"bob","password":"secret","ip":"192.0.2.3"}`)
			carol := loginToken(t, client, base, `{"username":"carol","password":"secret","ip":"192.0.2.4"}`)

			// alice: the same password, hashed anew (argon2id); bob: gone;
			// carol: as she was.
			if err := os.WriteFile(users, []byte("alice:"+testdeps.Argon2idSecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			srv.reload()

			for who, want := range map[string]int{alice: 401, alice2: 401, bob: 401, carol: 200} {
				if a := call(t, client, "GET", base+"/north/verify", who, ""); a.status != want {
					t.Errorf("verify %s after the reload: %d %q, want %d", who, a.status, a.body, want)
				}
			}
			if n := metricValue(t, srv.adminAddr, `northd_tokens_ended_total{subsystem="alarms",why="user_changed"}`); n != 3 {
				t.Errorf("%v tokens ended as user_changed, want 3", n)
			}
			if n := metricValue(t, srv.adminAddr, `northd_reloads_total{result="ok"}`); n != 1 {
				t.Errorf("%v reloads ok, want 1", n)
			}
			// alice logs in again with her password; bob cannot.
			loginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.1"}`)
			if a := call(t, client, "POST", base+"/north/login", "", `{"username":"bob","password":"secret","ip":"192.0.2.3"}`); a.status != 401 {
				t.Errorf("bob's login after the reload removed him: %d %q", a.status, a.body)
			}
		})
	}
}
