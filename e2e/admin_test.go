package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// The admin listener closes a keep-alive connection left idle for
// -idle-timeout, so that idle clients cannot hold its descriptors forever.
func TestAdminClosesIdleConnections(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-idle-timeout", "1s")
	admin := n.Admin
	c, err := net.Dial("tcp", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	testdeps.CheckAnswer(t, "GET", "/metrics", nil, resp.StatusCode, resp.Header, body)
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET /metrics: %d, close %v", resp.StatusCode, resp.Close)
	}
	// Only a server that never closes it gets near the deadline.
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	read, err := r.Read(make([]byte, 1))
	if read != 0 || !errors.Is(err, io.EOF) {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the idle admin connection was still open a minute later")
		}
		t.Fatalf("reading the idle connection: %d bytes, %v; want the server to close it", read, err)
	}
}

// A CPU profile that runs longer than -write-timeout is still delivered:
// its write deadline allows for the seconds it was asked to run.
func TestAdminProfileOutlastsWriteTimeout(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-pprof", "-write-timeout", "1s")
	admin := n.Admin
	client := &http.Client{Timeout: time.Minute}
	a := testdeps.Call(t, client, "GET", "http://"+admin+"/debug/pprof/profile?seconds=2", "", "")
	if a.Status != 200 || a.Header.Get("Content-Type") != "application/octet-stream" || len(a.Body) == 0 {
		t.Fatalf("profile: %d %q, %d bytes: %.200s", a.Status, a.Header.Get("Content-Type"), len(a.Body), a.Body)
	}
}

// With -admin-token-file every route of the admin listener asks for one of
// its secrets, reads included (the listings name north servers' urls, ips
// and last errors): 401 without it, with a sentence and WWW-Authenticate,
// and its own answer with it.
func TestAdminRoutesNeedTheToken(t *testing.T) {
	secrets := testdeps.WriteUsersFile(t, "# operators\n0123456789abcdef0123\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-admin-token-file", secrets, "-pprof")
	admin := n.Admin
	client := &http.Client{Timeout: time.Minute}
	for _, c := range []struct {
		method, path string
		with         int // the answer with the token
	}{
		{"POST", "/north/events", 202},
		{"GET", "/metrics", 200},
		{"GET", "/north/servers", 200},
		{"GET", "/north/subscriptions", 200},
		{"GET", "/debug/pprof/", 200},
		{"GET", "/debug/pprof/heap", 200},
		{"GET", "/debug/pprof/goroutine?debug=1", 200},
		{"GET", "/debug/pprof/cmdline", 200},
		{"GET", "/debug/pprof/symbol", 200},
		{"GET", "/debug/pprof/profile?seconds=1", 200},
		{"GET", "/debug/pprof/trace?seconds=1", 200},
		{"GET", "/no/such/route", 404},
	} {
		for _, auth := range []string{"", "Bearer wrong-secret-wrong-secret", "Basic 0123456789abcdef0123", "Bearer 0123456789abcdef0123"} {
			req, err := http.NewRequest(c.method, "http://"+admin+c.path, strings.NewReader(`{"type":"t"}`))
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			a, err := testdeps.Send(t, client, req)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := a, a.Body
			want := 401
			if auth == "Bearer 0123456789abcdef0123" {
				want = c.with
			}
			if resp.Status != want {
				t.Errorf("%s %s, Authorization %q: %d %.60q, want %d", c.method, c.path, auth, resp.Status, body, want)
			}
			if want == 401 && (resp.Header.Get("WWW-Authenticate") != `Bearer realm="northd-admin"` ||
				!strings.Contains(string(body), "the admin listener needs Authorization: Bearer with a secret from -admin-token-file")) {
				t.Errorf("%s %s, Authorization %q: 401 %v %s, want WWW-Authenticate and the sentence", c.method, c.path, auth, resp.Header, body)
			}
		}
	}
}

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
			n := start(t, args...)
			listen, admin := n.Listen, n.Admin
			client := testdeps.ClientFrom("127.0.0.1")
			// b gets 23 north servers, a and c a few, interleaved, so
			// that a cursor taken from b falls among theirs too.
			want := map[string]bool{}
			for i := range 23 {
				ip := "192.0.2." + strconv.Itoa(100+i)
				want[ip] = true
				testdeps.LoginToken(t, client, "http://"+listen[1], `{"username":"n","password":"p","ip":"`+ip+`"}`)
				if i%4 == 0 {
					testdeps.LoginToken(t, client, "http://"+listen[0], `{"username":"n","password":"p","ip":"198.51.100.`+strconv.Itoa(i)+`"}`)
					testdeps.LoginToken(t, client, "http://"+listen[2], `{"username":"n","password":"p","ip":"203.0.113.`+strconv.Itoa(i)+`"}`)
				}
			}

			seen := map[string]int{}
			after, pages := "", 0
			for {
				q := url.Values{"subsystem": {"b"}, "limit": {"5"}}
				if after != "" {
					q.Set("after", after)
				}
				a := testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers?"+q.Encode(), "", "")
				var page struct {
					Subsystems []struct {
						Name         string        `json:"name"`
						NorthServers []northServer `json:"north_servers"`
						Count        int           `json:"count"`
						Next         string        `json:"next"`
					} `json:"subsystems"`
				}
				if err := json.Unmarshal([]byte(a.Body), &page); a.Status != 200 || err != nil {
					t.Fatalf("page %d: %d %v %s", pages+1, a.Status, err, a.Body)
				}
				if len(page.Subsystems) != 1 || page.Subsystems[0].Name != "b" || page.Subsystems[0].Count != 23 {
					t.Fatalf("page %d is not b's alone, or b's count is not 23: %s", pages+1, a.Body)
				}
				pages++
				sub := page.Subsystems[0]
				for i, ns := range sub.NorthServers {
					seen[ns.IP]++
					if i > 0 && ns.LastLogin.After(sub.NorthServers[i-1].LastLogin) {
						t.Errorf("page %d is not newest first: %s", pages, a.Body)
					}
				}
				if sub.Next == "" {
					break
				}
				if len(sub.NorthServers) != 5 || pages > 5 {
					t.Fatalf("page %d has %d entries and a next page: %s", pages, len(sub.NorthServers), a.Body)
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
			a := testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers?after="+url.QueryEscape(after), "", "")
			if a.Status != 400 || a.Body != `{"code": 1, "description": "after= continues the pages of one subsystem: give subsystem=NAME with it (this instance serves a, b, c)"}` {
				t.Errorf("after= without subsystem=: %d %q", a.Status, a.Body)
			}
			a = testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers?subsystem=d", "", "")
			if a.Status != 404 || a.Body != `{"code": 1, "description": "no subsystem here is named \"d\" (this instance serves a, b, c)"}` {
				t.Errorf("subsystem=d: %d %q", a.Status, a.Body)
			}
			a = testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers?subsystem=b&after=12", "", "")
			if a.Status != 400 || a.Body != `{"code": 1, "description": "after=\"12\" is not a cursor from a previous page's \"next\""}` {
				t.Errorf("after=12: %d %q", a.Status, a.Body)
			}
		})
	}
}

// Redis orders the north servers of one score by the text of
// their ip; pages list them by ip, as the memory registry does, and a page
// cut among them goes on where it stopped.
func TestRedisPagesOrderTiesByIP(t *testing.T) {
	redis := testdeps.StartRedis(t)
	n := start(t, "-listen", "b=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	admin := n.Admin
	for _, ip := range []string{"10.0.0.7", "10.0.0.3", "10.0.1.44", "10.0.0.12", "10.0.0.5", "10.0.3.232", "10.0.0.1"} {
		redis.CLI("ZADD", "northd:{b}:servers", "1700000000000000", ip) // microseconds
		redis.CLI("HSET", "northd:{b}:ns:"+ip, "ip", ip, "username", "n", "last_login", "1700000000000", "logins", "1")
	}
	redis.CLI("ZADD", "northd:{b}:servers", "1700000001000000", "10.0.0.2")
	redis.CLI("HSET", "northd:{b}:ns:10.0.0.2", "ip", "10.0.0.2", "username", "n", "last_login", "1700000001000", "logins", "1")
	var got []string
	after := ""
	for pages := 1; ; pages++ {
		a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+admin+"/north/servers?limit=3&after="+url.QueryEscape(after), "", "")
		var page struct {
			Subsystems []struct {
				NorthServers []northServer `json:"north_servers"`
				Next         string        `json:"next"`
			} `json:"subsystems"`
		}
		if err := json.Unmarshal([]byte(a.Body), &page); a.Status != 200 || err != nil || len(page.Subsystems) != 1 {
			t.Fatalf("page %d: %d %v %s", pages, a.Status, err, a.Body)
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

// northServer is what the tests read of an entry of /north/servers.
type northServer struct {
	IP        string    `json:"ip"`
	LastLogin time.Time `json:"last_login"`
}
