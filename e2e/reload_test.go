package e2e

import (
	"os"
	"testing"

	"northd/internal/testdeps"
)

// A reload that removes a user or changes its password ends that user's
// live tokens at once, with either store, and counts them under
// why="user_changed"; a user the reload left alone keeps its token.
func TestReloadEndsTokensOfChangedUsers(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\nbob:"+testdeps.Bcrypt2ySecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\n")
			args := []string{"-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users}
			if store == "redis" {
				args = append(args, "-store", testdeps.StartRedis(t).URL())
			}
			n := start(t, args...)
			base := "http://" + n.Listen[0]
			client := testdeps.ClientFrom("127.0.0.1")
			alice := testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.1"}`)
			alice2 := testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.2"}`)
			bob := testdeps.LoginToken(t, client, base, `{"username":"bob","password":"secret","ip":"192.0.2.3"}`)
			carol := testdeps.LoginToken(t, client, base, `{"username":"carol","password":"secret","ip":"192.0.2.4"}`)

			// alice: the same password, hashed anew (argon2id); bob: gone;
			// carol: as she was.
			if err := os.WriteFile(users, []byte("alice:"+testdeps.Argon2idSecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			reload(t, n)

			for who, want := range map[string]int{alice: 401, alice2: 401, bob: 401, carol: 200} {
				if a := testdeps.Call(t, client, "GET", base+"/north/verify", who, ""); a.Status != want {
					t.Errorf("verify %s after the reload: %d %q, want %d", who, a.Status, a.Body, want)
				}
			}
			if c := testdeps.MetricValue(t, n.Admin, `northd_tokens_ended_total{subsystem="alarms",why="user_changed"}`); c != 3 {
				t.Errorf("%v tokens ended as user_changed, want 3", c)
			}
			if c := testdeps.MetricValue(t, n.Admin, `northd_reloads_total{result="ok"}`); c != 1 {
				t.Errorf("%v reloads ok, want 1", c)
			}
			// alice logs in again with her password; bob cannot.
			testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.1"}`)
			if a := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"bob","password":"secret","ip":"192.0.2.3"}`); a.Status != 401 {
				t.Errorf("bob's login after the reload removed him: %d %q", a.Status, a.Body)
			}
		})
	}
}

// A reload that narrows the ips a user may claim ends its live tokens at
// the ips taken from it, with either store, and closes their streams; its
// tokens at the ips it keeps, and users whose ips it left or widened, stay.
func TestReloadEndsTokensOutsideNarrowedIPs(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+":192.0.2.1,192.0.2.2\n"+
				"bob:"+testdeps.Bcrypt2ySecret+":192.0.2.3\n"+
				"carol:"+testdeps.Bcrypt2ySecret+"\n")
			args := []string{"-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users, "-event-heartbeat", "50ms"}
			if store == "redis" {
				args = append(args, "-store", testdeps.StartRedis(t).URL())
			}
			n := start(t, args...)
			addr := n.Listen[0]
			base := "http://" + addr
			client := testdeps.ClientFrom("127.0.0.1")
			atA := testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.1"}`)
			atB := testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.2"}`)
			bob := testdeps.LoginToken(t, client, base, `{"username":"bob","password":"secret","ip":"192.0.2.3"}`)
			carol := testdeps.LoginToken(t, client, base, `{"username":"carol","password":"secret","ip":"192.0.2.8"}`)
			stream := streamOpened(t, "alice's stream at 192.0.2.2", addr, atB, "")

			// alice: 192.0.2.1 only; bob: widened; carol: given a list
			// without the ip she holds.
			if err := os.WriteFile(users, []byte("alice:"+testdeps.Bcrypt2ySecret+":192.0.2.1\n"+
				"bob:"+testdeps.Bcrypt2ySecret+":192.0.2.0/24\n"+
				"carol:"+testdeps.Bcrypt2ySecret+":192.0.2.9\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			reload(t, n)

			for _, c := range []struct {
				who, token string
				want       int
			}{{"alice at 192.0.2.1", atA, 200}, {"alice at 192.0.2.2", atB, 401}, {"bob at 192.0.2.3", bob, 200}, {"carol at 192.0.2.8", carol, 401}} {
				if a := testdeps.Call(t, client, "GET", base+"/north/verify", c.token, ""); a.Status != c.want {
					t.Errorf("verify %s after the reload: %d %q, want %d", c.who, a.Status, a.Body, c.want)
				}
			}
			stream.closed() // at the next heartbeat
			if c := testdeps.MetricValue(t, n.Admin, `northd_event_streams_closed_total{subsystem="alarms",why="token_ended"}`); c != 1 {
				t.Errorf("%v streams closed for their token, want 1", c)
			}
			if c := testdeps.MetricValue(t, n.Admin, `northd_tokens_ended_total{subsystem="alarms",why="user_changed"}`); c != 2 {
				t.Errorf("%v tokens ended as user_changed, want 2", c)
			}
		})
	}
}
