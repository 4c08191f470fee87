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

// An unknown username gets the same answer as a wrong password of the
// costliest user in the file, not the first: here a bcrypt cost 4 user
// comes first, a light argon2id user next, and the costliest is an
// argon2id user of hash-password's (m=19456,t=2). internal/auth checks
// that the dummy is as costly as that user.
func TestUnknownUserAnsweredAsTheCostliestUser(t *testing.T) {
	var heavy bytes.Buffer
	if err := run(context.Background(), []string{"hash-password"}, os.LookupEnv, strings.NewReader("heavy secret\n"), &heavy, io.Discard); err != nil {
		t.Fatal(err)
	}
	users := testdeps.WriteUsersFile(t, "cheap:"+testdeps.Bcrypt2ySecret+"\nlight:"+testdeps.Argon2idSecret+"\nheavy:"+strings.TrimSpace(heavy.String())+"\n")
	listen, _, _, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "off", "-users", users)
	client := clientFrom("127.0.0.1")
	wrong := call(t, client, "POST", "http://"+listen[0]+"/north/login", "", `{"username":"heavy","password":"guess"}`)
	unknown := call(t, client, "POST", "http://"+listen[0]+"/north/login", "", `{"username":"nobody","password":"guess"}`)
	wrong.header.Del("Date")
	unknown.header.Del("Date")
	if wrong.status != 401 || wrong.body != wrongCredentials || unknown.status != 401 || unknown.body != wrongCredentials || !equalHeaders(wrong.header, unknown.header) {
		t.Errorf("wrong password: %d %v %q; unknown user: %d %v %q", wrong.status, wrong.header, wrong.body, unknown.status, unknown.header, unknown.body)
	}
}
