package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// A -store URL that fails, whatever the reason, is named in the error and
// the log without its password, so that the password cannot reach a
// journal or a terminal's scrollback.
func TestStoreURLPasswordNeverPrinted(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := closed.Addr().String()
	closed.Close()
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
		checkFailureHidesPassword(t, nil, map[string]string{"NORTHD_STORE": "redis://north:hunter2-secret@" + unreachable + "/0"},
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

// checkFailureHidesPassword runs northd with args and env, expects it to
// fail with an error containing want, and neither the error nor the log to
// hold any of secrets.
func checkFailureHidesPassword(t *testing.T, args []string, env map[string]string, want string, secrets ...string) {
	t.Helper()
	logs := new(testdeps.SyncBuffer)
	err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0", "-admin", "off"}, args...), testdeps.EnvFrom(env), nil, io.Discard, logs)
	if err == nil {
		t.Fatalf("northd started with %v and %v", args, env)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
			t.Errorf("%q printed:\nerror: %v\nlog:\n%s", s, err, logs)
		}
	}
}

// While serving with a store whose URL holds a password, neither the log,
// /north/servers nor /metrics shows it, not even when the store goes away.
func TestStorePasswordNotShownWhileServing(t *testing.T) {
	redis := testdeps.StartRedis(t)
	redis.CLI("CONFIG", "SET", "requirepass", "hunter2-secret")
	listen, admin, logs, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", "redis://:hunter2-secret@"+redis.Addr()+"/0")
	client := clientFrom("127.0.0.1")
	loginToken(t, client, "http://"+listen[0], `{"username":"north","password":"pw","ip":"192.0.2.80"}`)
	shown := call(t, client, "GET", "http://"+admin+"/north/servers", "", "").body + call(t, client, "GET", "http://"+admin+"/metrics", "", "").body
	redis.Kill()
	testdeps.WaitFor(t, "/readyz 503 with the store gone", func() bool {
		return call(t, client, "GET", "http://"+listen[0]+"/readyz", "", "").status == 503
	})
	if strings.Contains(shown, "hunter2") || strings.Contains(logs.String(), "hunter2") {
		t.Errorf("the password is shown:\n%s\nlog:\n%s", shown, logs)
	}
}
