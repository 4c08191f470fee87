package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"northd/internal/store"
	"northd/internal/testdeps"
)

// /north/servers pages one subsystem at a time: walking subsystem b's
// pages, with no logins between them, lists each of its north servers
// exactly once, newest first, whatever the other subsystems hold, with
// either store.
func TestNorthServersPagesOneSubsystem(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			args := []string{"-listen", "a=127.0.0.1:0,b=127.0.0.1:0,c=127.0.0.1:0", "-admin", "127.0.0.1:0"}
			if kind == "redis" {
				args = append(args, "-store", testdeps.StartRedis(t).URL())
			}
			listen, admin, _, _ := startRun(t, args...)
			client := clientFrom("127.0.0.1")
			// b gets 23 north servers, a and c a few, interleaved, so
			// that a cursor taken from b falls among theirs too.
			want := map[string]bool{}
			for i := range 23 {
				ip := "192.0.2." + strconv.Itoa(100+i)
				want[ip] = true
				loginToken(t, client, "http://"+listen[1], `{"username":"n","password":"p","ip":"`+ip+`"}`)
				if i%4 == 0 {
					loginToken(t, client, "http://"+listen[0], `{"username":"n","password":"p","ip":"198.51.100.`+strconv.Itoa(i)+`"}`)
					loginToken(t, client, "http://"+listen[2], `{"username":"n","password":"p","ip":"203.0.113.`+strconv.Itoa(i)+`"}`)
				}
			}

			seen := map[string]int{}
			after, pages := "", 0
			for {
				q := url.Values{"subsystem": {"b"}, "limit": {"5"}}
				if after != "" {
					q.Set("after", after)
				}
				a := call(t, client, "GET", "http://"+admin+"/north/servers?"+q.Encode(), "", "")
				var page struct {
					Subsystems []struct {
						Name         string              `json:"name"`
						NorthServers []store.NorthServer `json:"north_servers"`
						Count        int                 `json:"count"`
						Next         string              `json:"next"`
					} `json:"subsystems"`
				}
				if err := json.Unmarshal([]byte(a.body), &page); a.status != 200 || err != nil {
					t.Fatalf("page %d: %d %v %s", pages+1, a.status, err, a.body)
				}
				if len(page.Subsystems) != 1 || page.Subsystems[0].Name != "b" || page.Subsystems[0].Count != 23 {
					t.Fatalf("page %d is not b's alone, or b's count is not 23: %s", pages+1, a.body)
				}
				pages++
				sub := page.Subsystems[0]
				for i, ns := range sub.NorthServers {
					seen[ns.IP]++
					if i > 0 && ns.LastLogin.After(sub.NorthServers[i-1].LastLogin) {
						t.Errorf("page %d is not newest first: %s", pages, a.body)
					}
				}
				if sub.Next == "" {
					break
				}
				if len(sub.NorthServers) != 5 || pages > 5 {
					t.Fatalf("page %d has %d entries and a next page: %s", pages, len(sub.NorthServers), a.body)
				}
				after = sub.Next
			}
			if pages != 5 || len(seen) != len(want) {
				t.Errorf("%d pages listed %d north servers, want 5 pages of b's 23", pages, len(seen))
			}
			for ip, n := range seen {
				if n != 1 || !want[ip] {
					t.Errorf("%s listed %d times; b's: %v", ip, n, want[ip])
				}
			}

			// A cursor belongs to one subsystem.
			a := call(t, client, "GET", "http://"+admin+"/north/servers?after="+url.QueryEscape(after), "", "")
			if a.status != 400 || a.body != "after= continues the pages of one subsystem: give subsystem=NAME with it (this instance serves a, b, c)\n" {
				t.Errorf("after= without subsystem=: %d %q", a.status, a.body)
			}
			a = call(t, client, "GET", "http://"+admin+"/north/servers?subsystem=d", "", "")
			if a.status != 404 || a.body != "no subsystem here is named \"d\" (this instance serves a, b, c)\n" {
				t.Errorf("subsystem=d: %d %q", a.status, a.body)
			}
			a = call(t, client, "GET", "http://"+admin+"/north/servers?subsystem=b&after=12", "", "")
			if a.status != 400 || a.body != "after=\"12\" is not a cursor from a previous page's \"next\"\n" {
				t.Errorf("after=12: %d %q", a.status, a.body)
			}
		})
	}
}

// Redis orders the north servers of one score by the text of
// their ip; pages list them by ip, as the memory registry does, and a page
// cut among them goes on where it stopped.
func TestRedisPagesOrderTiesByIP(t *testing.T) {
	redis := testdeps.StartRedis(t)
	_, admin, _, _ := startRun(t, "-listen", "b=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	for _, ip := range []string{"10.0.0.7", "10.0.0.3", "10.0.1.44", "10.0.0.12", "10.0.0.5", "10.0.3.232", "10.0.0.1"} {
		redis.CLI("ZADD", "northd:{b}:servers", "1700000000000000", ip) // microseconds
		redis.CLI("HSET", "northd:{b}:ns:"+ip, "ip", ip, "username", "n", "last_login", "1700000000000", "logins", "1")
	}
	redis.CLI("ZADD", "northd:{b}:servers", "1700000001000000", "10.0.0.2")
	redis.CLI("HSET", "northd:{b}:ns:10.0.0.2", "ip", "10.0.0.2", "username", "n", "last_login", "1700000001000", "logins", "1")
	var got []string
	after := ""
	for pages := 1; ; pages++ {
		a := call(t, http.DefaultClient, "GET", "http://"+admin+"/north/servers?limit=3&after="+url.QueryEscape(after), "", "")
		var page struct {
			Subsystems []struct {
				NorthServers []store.NorthServer `json:"north_servers"`
				Next         string              `json:"next"`
			} `json:"subsystems"`
		}
		if err := json.Unmarshal([]byte(a.body), &page); a.status != 200 || err != nil || len(page.Subsystems) != 1 {
			t.Fatalf("page %d: %d %v %s", pages, a.status, err, a.body)
		}
		for _, ns := range page.Subsystems[0].NorthServers {
			got = append(got, ns.IP)
		}
		if after = page.Subsystems[0].Next; after == "" || pages > 3 {
			break
		}
	}
	if want := "10.0.0.2 10.0.0.1 10.0.0.3 10.0.0.5 10.0.0.7 10.0.0.12 10.0.1.44 10.0.3.232"; strings.Join(got, " ") != want {
		t.Errorf("pages listed %s, want %s", strings.Join(got, " "), want)
	}
}
