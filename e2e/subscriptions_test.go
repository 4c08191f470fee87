package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"northd/internal/testdeps"
)

func TestWebhooksEndToEnd(t *testing.T) {
	hook := &hookReceiver{t: t}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	n := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-push-allow", "127.0.0.0/8")
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	token := loginAs(t, listen[0], "north-1", "127.0.0.1")

	a := testdeps.Call(t, http.DefaultClient, "POST", base+"/north/subscriptions", token, `{"url":"http://127.0.0.2:9/hook"}`)
	if want := `{"code": 1, "description": "`; a.Status != 400 || !strings.HasPrefix(a.Body, want) {
		t.Errorf("a url that is not the login ip: %d %s", a.Status, a.Body)
	}
	a = testdeps.Call(t, http.DefaultClient, "POST", base+"/north/subscriptions", token, `{"url":"`+srv.URL+`/hook","types":["alarm"]}`)
	var created struct {
		Code   int    `json:"code"`
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if a.Status != 201 || json.Unmarshal([]byte(a.Body), &created) != nil || !strings.HasPrefix(created.ID, "sub_") || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("subscribe: %d %s", a.Status, a.Body)
	}
	hook.know(created.Secret)
	// Before the first event taken its cursor is empty ("-0" before: the
	// zero id, which no after= takes).
	if a := testdeps.Call(t, http.DefaultClient, "GET", base+"/north/subscriptions", token, ""); !strings.Contains(a.Body, `"cursor":"","lag":0`) {
		t.Errorf("a new subscription: %d %s, want its cursor empty", a.Status, a.Body)
	}
	if bodies, _ := hook.got(); len(bodies) != 1 || !strings.Contains(bodies[0], `"type":"subscription.verify"`) || !strings.Contains(bodies[0], `"data":{"subscription":"`+created.ID+`"}`) {
		t.Fatalf("the verification: %q", bodies)
	}

	published(t, admin, `{"type":"notice","data":1}`)
	published(t, admin, `{"type":"alarm","data":{"level":"major"}}`)
	testdeps.WaitFor(t, "the alarm delivered", func() bool { b, _ := hook.got(); return len(b) == 2 })
	bodies, bad := hook.got()
	if bad != 0 || !strings.HasPrefix(bodies[1], `[{"id":"`) || !strings.Contains(bodies[1], `"type":"alarm","time":`) || strings.Contains(bodies[1], "notice") {
		t.Errorf("delivered %q, %d badly signed", bodies[1], bad)
	}

	a = testdeps.Call(t, http.DefaultClient, "GET", base+"/north/subscriptions", token, "")
	if a.Status != 200 || !strings.Contains(a.Body, `"id":"`+created.ID+`"`) || strings.Contains(a.Body, "whsec_") || !strings.Contains(a.Body, `"types":["alarm"]`) {
		t.Errorf("list: %d %s", a.Status, a.Body)
	}
	a = testdeps.Call(t, http.DefaultClient, "GET", "http://"+admin+"/north/subscriptions", "", "")
	if a.Status != 200 || !strings.Contains(a.Body, `"id": "`+created.ID+`"`) || !strings.Contains(a.Body, `"state": "active"`) || strings.Contains(a.Body, "whsec_") {
		t.Errorf("admin list: %d %s", a.Status, a.Body)
	}
	other := loginAs(t, listen[0], "north-2", "127.0.0.3")
	if a := testdeps.Call(t, http.DefaultClient, "DELETE", base+"/north/subscriptions/"+created.ID, other, ""); a.Status != 404 {
		t.Errorf("another north server deleting it: %d %s", a.Status, a.Body)
	}
	if a := testdeps.Call(t, http.DefaultClient, "DELETE", base+"/north/subscriptions/"+created.ID, token, ""); a.Status != 200 || a.Body != `{"code": 0, "description": "deleted"}` {
		t.Errorf("delete: %d %s", a.Status, a.Body)
	}
	if a := testdeps.Call(t, http.DefaultClient, "GET", base+"/north/subscriptions", token, ""); a.Body != `{"code":0,"subscriptions":[]}` {
		t.Errorf("list after delete: %s", a.Body)
	}
}

func TestWebhooksOffByDefault(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "off")
	listen := n.Listen
	token := loginAs(t, listen[0], "north-1", "127.0.0.1")
	a := testdeps.Call(t, http.DefaultClient, "POST", "http://"+listen[0]+"/north/subscriptions", token, `{"url":"http://127.0.0.1:9/hook"}`)
	want := `{"code": 5, "description": "webhooks are off on this subsystem: the operator has allowed no network for them (-push-allow); read events from GET /north/events instead"}`
	if a.Status != 403 || a.Body != want {
		t.Errorf("%d %s\nwant 403 %s", a.Status, a.Body, want)
	}
	if a := testdeps.Call(t, http.DefaultClient, "POST", "http://"+listen[0]+"/north/subscriptions", "", `{}`); a.Status != 401 {
		t.Errorf("no token: %d %s", a.Status, a.Body)
	}
}

// A subscribe whose url does not answer HTTP, or where nothing listens,
// is told the category of the failure: not the banner of what answered,
// nor Go's dial error.
func TestSubscribeNamesTheFailure(t *testing.T) {
	banner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer banner.Close()
	go func() {
		for {
			c, err := banner.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			defer c.Close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there any more
	n := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "off", "-push-allow", "127.0.0.0/8")
	listen := n.Listen
	token := loginAs(t, listen[0], "north-1", "127.0.0.1")
	for _, c := range []struct{ addr, want string }{
		{banner.Addr().String(), `{"code": 1, "description": "the url did not accept the subscription.verify event: not HTTP: what listens on that port closed the connection or answered something that is not HTTP; answer it with a 2xx, then subscribe again"}`},
		{closed, `{"code": 1, "description": "the url did not accept the subscription.verify event: connection refused: nothing listens on that port; answer it with a 2xx, then subscribe again"}`},
	} {
		a := testdeps.Call(t, http.DefaultClient, "POST", "http://"+listen[0]+"/north/subscriptions", token, `{"url":"http://`+c.addr+`/hook"}`)
		if a.Status != 400 || a.Body != c.want {
			t.Errorf("subscribing to %s: %d %s\nwant 400 %s", c.addr, a.Status, a.Body, c.want)
		}
		// Read from northd's stderr as it comes: the line may reach the
		// test after the answer does.
		n.WaitForLog(t, `"url":"http://`+c.addr+`/hook","err":"Post`)
	}
}
