package e2e

import (
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// usageExit is how northd stops on a usage error: exit status 2, its last
// line "northd: " and the error.
const usageExit = 2

// lastLine is the last line northd wrote to its standard error: the error
// it stopped with.
func lastLine(stderr string) string {
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	return lines[len(lines)-1]
}

// Without -users northd answers only on loopback, unless told on purpose.
func TestOpenModeIsForLoopback(t *testing.T) {
	r := testdeps.RunNorthd(t, bin, testdeps.Options{}, "", "-listen", "0.0.0.0:0", "-admin", "off")
	want := "northd: -listen 0.0.0.0:0 is not a loopback address, and without -users any credentials log in; give -users FILE, or -insecure-open to accept any credentials on purpose"
	if r.Code != usageExit || lastLine(r.Stderr) != want {
		t.Fatalf("open mode on 0.0.0.0: exit %d\n%s", r.Code, r.Stderr)
	}
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	if !strings.Contains(n.Log(), "open mode: any non-empty username and password log in; give -users FILE to check credentials") {
		t.Errorf("no open-mode warning in the log:\n%s", n.Log())
	}
	if testdeps.MetricValue(t, n.Admin, `northd_auth_mode{mode="open"}`) != 1 {
		t.Error("auth mode is not open")
	}
}

// A users file northd refuses stops it with exit status 2 (a usage
// error), naming the file and the line.
func TestRefusedUsersFileStopsNorthd(t *testing.T) {
	users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\nbob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
	r := testdeps.RunNorthd(t, bin, testdeps.Options{}, "", "-listen", "127.0.0.1:0", "-admin", "off", "-users", users)
	if r.Code != usageExit || !strings.HasPrefix(lastLine(r.Stderr), "northd: users file "+users+" line 2: SHA-1 hashes") {
		t.Fatalf("northd with a SHA-1 line: exit %d\n%s", r.Code, r.Stderr)
	}
}

// A username with white space around it stops northd with exit status 2
// (a usage error), naming the file and line.
func TestUsernameWithSpacesStopsNorthd(t *testing.T) {
	users := testdeps.WriteUsersFile(t, testdeps.TestUsersHeader+"alice :"+testdeps.Bcrypt2ySecret+"\n")
	// A file wrongly accepted makes northd serve on: RunNorthd ends it,
	// failing the test.
	r := testdeps.RunNorthd(t, bin, testdeps.Options{}, "", "-listen", "127.0.0.1:0", "-admin", "off", "-users", users)
	if want := "northd: users file " + users + ` line 3: the username "alice " starts or ends with white space, which no login would send; remove it`; r.Code != usageExit || lastLine(r.Stderr) != want {
		t.Fatalf("northd with \"alice :\": exit %d\n%s\nwant exit 2 and %q", r.Code, r.Stderr, want)
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
		r := testdeps.RunNorthd(t, bin, testdeps.Options{}, tt.stdin, tt.args...)
		if r.Code != usageExit || r.Stderr != "northd: "+tt.want+"\n" || r.Stdout != "" {
			t.Errorf("northd %s: exit %d, stderr %q, stdout %q; want exit 2 and the usage error %q", strings.Join(tt.args, " "), r.Code, r.Stderr, r.Stdout, tt.want)
		}
	}
}

// A -store URL that fails, whatever the reason, is named in the error and
// the log without its password, so that the password cannot reach a
// journal or a terminal's scrollback.
func TestStoreURLPasswordNeverPrinted(t *testing.T) {
	unreachable := testdeps.FreeAddr(t)
	tests := []struct {
		name, store, want string
	}{
		{"bad port", "redis://north:hunter2-secret@127.0.0.1:notaport/0", "invalid -store redis://(rest not shown: it may hold a password): not a valid URL (percent-encode any of : / @ ? # in the user name or password)"},
		{"bad database", "redis://north:hunter2-secret@127.0.0.1:6379/nine", `invalid -store redis://north:xxxxx@127.0.0.1:6379/nine: redis: invalid database number: "nine"`},
		{"slash in the password", "redis://north:hunt/er2-secret@127.0.0.1:6379/0", "invalid -store redis://"},
		{"unreachable", "redis://north:hunter2-secret@" + unreachable + "/0", "cannot reach the store redis://north:xxxxx@" + unreachable + "/0: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkStoreFailureHidesPassword(t, tt.store, tt.want, "hunter2-secret", "hunt", "er2-secret")
		})
	}
	// The way docs/operating.md gives to pass it: in the environment.
	t.Run("NORTHD_STORE", func(t *testing.T) {
		checkFailureHidesPassword(t, nil, []string{"NORTHD_STORE=redis://north:hunter2-secret@" + unreachable + "/0"},
			"cannot reach the store redis://north:xxxxx@"+unreachable+"/0: ", "hunter2-secret")
	})
	t.Run("wrong password", func(t *testing.T) {
		redis := testdeps.StartRedis(t)
		store := "redis://north:hunter2-secret@" + redis.Addr() + "/0"
		checkStoreFailureHidesPassword(t, store, "cannot reach the store redis://north:xxxxx@"+redis.Addr()+"/0: ", "hunter2-secret")
	})
}

// checkStoreFailureHidesPassword runs northd with -store store, expects it
// to fail with an error containing want, and neither the error nor the log
// to hold any of secrets.
func checkStoreFailureHidesPassword(t *testing.T, store, want string, secrets ...string) {
	t.Helper()
	checkFailureHidesPassword(t, []string{"-store", store}, nil, want, secrets...)
}

// checkFailureHidesPassword runs northd with args and env (NAME=value),
// expects it to fail with an error containing want, and neither the error
// nor the log to hold any of secrets.
func checkFailureHidesPassword(t *testing.T, args, env []string, want string, secrets ...string) {
	t.Helper()
	r := testdeps.RunNorthd(t, bin, testdeps.Options{Env: env}, "", append([]string{"-listen", "127.0.0.1:0", "-admin", "off"}, args...)...)
	if r.Code == 0 {
		t.Fatalf("northd exited 0 with %v and %v", args, env)
	}
	if !strings.HasPrefix(lastLine(r.Stderr), "northd: ") || !strings.Contains(lastLine(r.Stderr), want) {
		t.Errorf("northd stopped with\n%s\nwant its error to contain %q", r.Stderr, want)
	}
	for _, s := range secrets {
		if strings.Contains(r.Stderr, s) || strings.Contains(r.Stdout, s) {
			t.Errorf("%q printed:\n%s%s", s, r.Stdout, r.Stderr)
		}
	}
}
