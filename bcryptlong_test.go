package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// bcrypt checks only a password's first 72 bytes (with its terminating
// NUL), so a bcrypt user's password of 72 bytes or more is refused, with
// the wrong-password answer: otherwise 72 A's would log in whatever
// followed them, or with nothing after.
func TestBcryptRefusesPasswordsOf72BytesOrMore(t *testing.T) {
	a72 := strings.Repeat("A", 72)
	b71 := strings.Repeat("B", 71)
	long := strings.Repeat("long argon2id secret ", 5)
	var argonHash bytes.Buffer
	if err := run(context.Background(), []string{"hash-password"}, os.LookupEnv, strings.NewReader(long+"\n"), &argonHash, io.Discard); err != nil {
		t.Fatal(err)
	}
	users := testdeps.WriteUsersFile(t, htpasswdBcrypt(t, "longpw", a72+"secret tail")+"\n"+htpasswdBcrypt(t, "edge", b71)+"\n"+
		"argon:"+strings.TrimSpace(argonHash.String())+"\n")
	listen, admin, logs, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users)
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")

	for _, password := range []string{a72 + "another tail", a72, a72 + "secret tail", a72 + "secret tail"} {
		a := call(t, client, "POST", base+"/north/login", "", `{"username":"longpw","password":"`+password+`"}`)
		if a.status != 401 || a.body != wrongCredentials || a.header.Get("WWW-Authenticate") != `Bearer realm="northd"` {
			t.Errorf("bcrypt user, a %d-byte password: %d %q; want 401 %q", len(password), a.status, a.body, wrongCredentials)
		}
	}
	// Nothing was verified, so the cache holds nothing to log in with.
	if n := metricValue(t, admin, "northd_auth_cache_entries"); n != 0 {
		t.Errorf("%v cache entries after refused logins, want 0", n)
	}
	// 71 bytes are checked whole; argon2id users have no such limit.
	loginToken(t, client, base, `{"username":"edge","password":"`+b71+`"}`)
	if a := call(t, client, "POST", base+"/north/login", "", `{"username":"edge","password":"`+b71+`B"}`); a.status != 401 {
		t.Errorf("71 B's and one more: %d %q, want 401", a.status, a.body)
	}
	loginToken(t, client, base, `{"username":"argon","password":"`+long+`","ip":"192.0.2.1"}`) // edge holds 127.0.0.1

	// The log says so once per user, recommends argon2id, and holds no
	// password.
	const warning = `refused a bcrypt user's password of 72 bytes or more: bcrypt checks only the first 72 bytes, so it cannot tell such a password from others that begin alike; give the user an argon2id hash (northd hash-password)`
	if got := logs.String(); strings.Count(got, warning) != 2 || strings.Count(got, `user=longpw`) != 1 || strings.Count(got, `user=edge`) != 1 || strings.Contains(got, "AAAA") || strings.Contains(got, "tail") {
		t.Errorf("log, want the warning once for longpw and once for edge, without passwords:\n%s", got)
	}
}
