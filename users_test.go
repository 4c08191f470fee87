package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"northd/internal/config"
	"northd/internal/testdeps"
)

// A username with white space around it stops northd with exit status 2
// (a usageError), naming the file and line.
func TestUsernameWithSpacesStopsNorthd(t *testing.T) {
	users := testdeps.WriteUsersFile(t, testdeps.TestUsersHeader+"alice :"+testdeps.Bcrypt2ySecret+"\n")
	// Cancelled already: a file wrongly accepted makes run start and
	// return at once, instead of serving until the test times out.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := run(ctx, []string{"-listen", "127.0.0.1:0", "-admin", "off", "-users", users}, os.LookupEnv, nil, io.Discard, io.Discard)
	var usage config.UsageError
	if want := "users file " + users + ` line 3: the username "alice " starts or ends with white space, which no login would send; remove it`; err == nil || !errors.As(err, &usage) || err.Error() != want {
		t.Fatalf("run with \"alice :\": %v, want the usage error %q", err, want)
	}
}

// hash-password's and check-passwords' refusals (internal/auth's) stop
// northd with exit status 2, as a bad flag does, with their own words.
func TestHashPasswordUsageErrorsAreNorthds(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"hash-password", "secret"}, "", "hash-password takes no arguments: it reads the password from standard input (echo -n pw | northd hash-password)"},
		{[]string{"hash-password"}, "\n", "no password on standard input; pipe one in (printf %s PASSWORD | northd hash-password) or run it in a terminal"},
		{[]string{"check-passwords", "now"}, "", "check-passwords is started by northd itself when it runs with -users; it is not a command for people"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, os.LookupEnv, strings.NewReader(tt.stdin), &out, io.Discard)
		var usage config.UsageError
		if err == nil || !errors.As(err, &usage) || err.Error() != tt.want || out.Len() != 0 {
			t.Errorf("northd %s: %v (stdout %q), want the usage error %q", strings.Join(tt.args, " "), err, out.String(), tt.want)
		}
	}
}

// htpasswdBcrypt makes a bcrypt users-file line with Apache's htpasswd,
// the tool operators use.
func htpasswdBcrypt(t *testing.T, user, password string) string {
	t.Helper()
	testdeps.Need(t, "htpasswd", "apache2-utils")
	out, err := exec.Command("htpasswd", "-nbB", "-C", "4", user, password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	return strings.TrimSpace(string(out))
}
