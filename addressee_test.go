package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"northd/internal/testdeps"
)

// pollAll long-polls token's events from the oldest kept (after= an id of
// no epoch, so a reset leads) and returns the data of each event, in
// order; "reset" for the reset.
func pollAll(t *testing.T, addr, token string) []string {
	t.Helper()
	a := call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?after=zz-0&wait=0", token, "")
	var got struct {
		Events []struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"events"`
	}
	if a.status != 200 || json.Unmarshal([]byte(a.body), &got) != nil {
		t.Fatalf("long poll: %d %s", a.status, a.body)
	}
	var data []string
	for _, e := range got.Events {
		if e.Type == "reset" {
			data = append(data, "reset")
			continue
		}
		data = append(data, string(e.Data))
	}
	return data
}

// eachStore runs test with the memory store and with a Redis store of
// its own.
func eachStore(t *testing.T, test func(t *testing.T, store ...string)) {
	t.Run("memory", func(t *testing.T) { test(t) })
	t.Run("redis", func(t *testing.T) { test(t, "-store", testdeps.StartRedis(t).URL()) })
}

func logoutToken(t *testing.T, addr, token string) {
	t.Helper()
	if a := call(t, http.DefaultClient, "POST", "http://"+addr+"/north/logout", token, ""); a.status != 200 {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
}

// An event to an ip is for the north server that held it when it was
// published: the next holder of the ip, under another username, never
// reads it, and the one it was for still does after logging in again.
func TestEventToAnIPGoesToItsHolderThen(t *testing.T) {
	eachStore(t, testEventToAnIPGoesToItsHolderThen)
}

func testEventToAnIPGoesToItsHolderThen(t *testing.T, store ...string) {
	listen, admin, _, _ := startRun(t, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, store...)...)
	addr := listen[0]
	first := loginAs(t, addr, "north-1", "192.0.2.5")
	published(t, admin, `{"type":"t","data":"for north-1","to":{"ip":"192.0.2.5"}}`)
	published(t, admin, `{"type":"t","data":"for all"}`)
	logoutToken(t, addr, first)
	second := loginAs(t, addr, "north-2", "192.0.2.5")
	if got, want := pollAll(t, addr, second), []string{"reset", `"for all"`}; !slices.Equal(got, want) {
		t.Errorf("north-2, the ip's next holder, got %q, want %q", got, want)
	}
	logoutToken(t, addr, second)
	again := loginAs(t, addr, "north-1", "192.0.2.5")
	if got, want := pollAll(t, addr, again), []string{"reset", `"for north-1"`, `"for all"`}; !slices.Equal(got, want) {
		t.Errorf("north-1, back at the ip, got %q, want %q", got, want)
	}
}

// An event to an ip that no one held is for the next north server to log
// in there, through its later logins too, and for no holder after it.
func TestEventToAnUnheldIPGoesToTheNextLogin(t *testing.T) {
	eachStore(t, testEventToAnUnheldIPGoesToTheNextLogin)
}

func testEventToAnUnheldIPGoesToTheNextLogin(t *testing.T, store ...string) {
	listen, admin, _, _ := startRun(t, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, store...)...)
	addr := listen[0]
	before := loginAs(t, addr, "north-0", "192.0.2.5")
	logoutToken(t, addr, before)
	published(t, admin, `{"type":"t","data":"for the next","to":{"ip":"192.0.2.5"}}`)
	first := loginAs(t, addr, "north-1", "192.0.2.5")
	if got, want := pollAll(t, addr, first), []string{"reset", `"for the next"`}; !slices.Equal(got, want) {
		t.Errorf("north-1, the next to log in, got %q, want %q", got, want)
	}
	logoutToken(t, addr, first)
	again := loginAs(t, addr, "north-1", "192.0.2.5")
	if got, want := pollAll(t, addr, again), []string{"reset", `"for the next"`}; !slices.Equal(got, want) {
		t.Errorf("north-1, logged in again, got %q, want %q", got, want)
	}
	logoutToken(t, addr, again)
	second := loginAs(t, addr, "north-2", "192.0.2.5")
	if got, want := pollAll(t, addr, second), []string{"reset"}; !slices.Equal(got, want) {
		t.Errorf("north-2, a later holder, got %q, want %q", got, want)
	}
	// An ip never seen is just as free.
	published(t, admin, `{"type":"t","data":"for a new ip","to":{"ip":"192.0.2.6"}}`)
	third := loginAs(t, addr, "north-3", "192.0.2.6")
	if got, want := pollAll(t, addr, third), []string{"reset", `"for a new ip"`}; !slices.Equal(got, want) {
		t.Errorf("north-3, the first at a new ip, got %q, want %q", got, want)
	}
}
