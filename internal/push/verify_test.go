package push_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"northd/internal/push"
	"northd/internal/testdeps"
	"northd/internal/webhooks"
)

// rawListener is a TCP port on ip whose every connection is handled by
// serve (n counts them from 1), for receivers that are not HTTP servers:
// a banner, a hang, a close. Connections still open at the end are closed.
func rawListener(t *testing.T, ip string, serve func(n int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); serve(n, c) }()
		}
	}()
	return ln.Addr().String()
}

// readRequest reads one HTTP request off c, so that an answer written
// after it is read as the answer, and has testdeps.CheckWebhook check it
// under secrets (none for a subscription.verify, sent before its secret
// is known).
func readRequest(t *testing.T, c net.Conn, secrets ...string) {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		t.Errorf("reading northd's request: %v", err)
		return
	}
	defer req.Body.Close()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Errorf("reading the body of northd's request: %v", err)
		return
	}
	if err := testdeps.CheckWebhook(req, body, secrets...); err != nil {
		t.Error(err)
	}
}

// sshBanner answers as an SSH server does, before any request, and
// leaves the connection open.
func sshBanner(_ int, c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")) }

// A subscribe whose verification fails is told the category of the
// failure, never what answered nor Go's error text; the operator's log
// has the error.
func TestVerifyAnswersNameACategory(t *testing.T) {
	w := newWorld(t, func(o *push.Options) {
		o.Timeout = time.Second // for the hang; every other case fails at once
		o.Client = o.Allow.Client(webhooks.ClientOptions{Timeout: o.Timeout, MaxResponseBytes: 1 << 10})
	})
	owner := push.Owner{Username: "north-1", IP: loopback}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there any more
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake northd abandons
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	for _, c := range []struct {
		name, url, category string
		log                 string // in the operator's log, beside the url
	}{
		{"an SSH banner", "http://" + rawListener(t, "127.0.0.1", sshBanner) + "/hook",
			"not HTTP: what listens on that port closed the connection or answered something that is not HTTP", ""}, // malformed, or unsolicited: it may come before the request
		{"a close at once", "http://" + rawListener(t, "127.0.0.1", func(_ int, c net.Conn) { c.Close() }) + "/hook",
			"not HTTP: what listens on that port closed the connection or answered something that is not HTTP", ""}, // EOF, or a reset
		{"a closed port", "http://" + closed + "/hook",
			"connection refused: nothing listens on that port", "connect: connection refused"},
		{"no answer", "http://" + rawListener(t, "127.0.0.1", func(int, net.Conn) {}) + "/hook",
			"timed out: no answer within -push-timeout", ""}, // which of the timeouts fires first varies
		{"https to a plain HTTP server", strings.Replace(plain.URL, "http:", "https:", 1) + "/hook",
			"TLS failed: the https handshake did not complete; serve TLS there with a certificate northd trusts, or use http://", "first record does not look like a TLS handshake"},
		{"a certificate not trusted", untrusted.URL + "/hook",
			"TLS failed: the https handshake did not complete; serve TLS there with a certificate northd trusts, or use http://", "certificate signed by unknown authority"},
		{"a 500 with its own reason and body", "http://" + rawListener(t, "127.0.0.1", func(_ int, c net.Conn) {
			readRequest(t, c)
			c.Write([]byte("HTTP/1.1 500 SSH-2.0-Kaputt\r\nContent-Length: 12\r\nConnection: close\r\n\r\nSSH-2.0-body"))
		}) + "/hook",
			"answered 500 Internal Server Error", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := w.push.Create(context.Background(), owner, c.url, nil)
			if _, ok := errors.AsType[*push.VerifyError](err); !ok {
				t.Fatalf("Create: %v, want a VerifyError", err)
			}
			want := "the url did not accept the subscription.verify event: " + c.category + "; answer it with a 2xx, then subscribe again"
			if err.Error() != want {
				t.Errorf("Create: %q\nwant %q", err.Error(), want)
			}
			_, port, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(c.url, "http://"), "https://"), ":")
			port, _, _ = strings.Cut(port, "/")
			for _, leak := range []string{"SSH", "Kaputt", port, "dial", "tcp", "Post"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("the answer quotes %q: %s", leak, err)
				}
			}
			if c.category == "answered 500 Internal Server Error" {
				return
			}
			if logged := `err="Post \"` + c.url + `\": `; !strings.Contains(w.logs.String(), logged) || !strings.Contains(w.logs.String(), c.log) {
				t.Errorf("the log lacks %s and %q:\n%s", logged, c.log, w.logs.String())
			}
		})
	}
	if n := strings.Count(w.logs.String(), `msg="webhook verification failed" subsystem=nms id=sub_`); n != 6 {
		t.Errorf("%d verification failures logged with their subsystem and id, want 6:\n%s", n, w.logs.String())
	}
}

// A delivery that fails on what answered records the category as the
// subscription's last_error; the log has the error.
func TestLastErrorNamesACategory(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.Backoff = func(int) time.Duration { return time.Hour } })
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	var secret atomic.Value // the subscription's, for the delivery after its verification
	addr := rawListener(t, "127.0.0.1", func(n int, c net.Conn) {
		if n > 1 { // after the verification, something else took the port
			readRequest(t, c, secret.Load().(string))
			c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			return
		}
		readRequest(t, c)
		c.Write([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
		c.Close()
	})
	v, s := w.subscribe(owner, "http://"+addr+"/hook")
	secret.Store(s)
	w.publish("t", "1")
	testdeps.WaitFor(t, "the failed delivery", func() bool { return w.push.List(owner)[0].LastError != "" })
	if got, want := w.push.List(owner)[0].LastError, "not HTTP: what listens on that port closed the connection or answered something that is not HTTP"; got != want {
		t.Errorf("last_error %q\nwant %q", got, want)
	}
	if want := `msg="webhook attempt failed" subsystem=nms id=` + v.ID; !strings.Contains(w.logs.String(), want) || !strings.Contains(w.logs.String(), "SSH-2.0-OpenSSH_9.6") {
		t.Errorf("the log lacks %s and the banner:\n%s", want, w.logs.String())
	}
}

// Verifications run on their own slots: with one delivery worker and
// verifications hanging, an existing subscription's deliveries go on; a
// north server whose subscriptions and verifications in flight reach its
// limit is refused before anything is posted, and one finding every
// verification slot taken is told to retry, at once.
func TestVerificationsLeaveDeliveriesAlone(t *testing.T) {
	w := newWorld(t, func(o *push.Options) {
		o.Workers = make(chan struct{}, 1)
		o.Verifiers = 2
		o.Timeout = time.Hour // the hanging verifications last until released
		o.Client = o.Allow.Client(webhooks.ClientOptions{Timeout: o.Timeout, MaxResponseBytes: 1 << 10})
	})
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	w.subscribe(owner, r.url("/hook"))

	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := testdeps.CheckWebhook(req, body); err != nil {
			t.Error(err)
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-req.Context().Done():
		}
		w.WriteHeader(500)
	}))
	t.Cleanup(hang.Close)
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before hang.Close, which waits for its handlers
	hanging := make(chan error, 2)
	for range 2 {
		go func() {
			_, _, err := w.push.Create(context.Background(), owner, hang.URL+"/hook", nil)
			hanging <- err
		}()
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(2 * time.Minute):
			t.Fatal("timed out waiting for the two verifications to reach the hanging url")
		}
	}

	w.publish("t", "1")
	testdeps.WaitFor(t, "the delivery, while two verifications hang", func() bool { return len(taken(r.deliveries()[1:])) == 1 })

	// One subscription and two in the making: north-1's three.
	if _, _, err := w.push.Create(context.Background(), owner, r.url("/hook"), nil); err != push.ErrTooMany {
		t.Errorf("a fourth subscription with PerNorthServer 3, two of them verifying: %v, want ErrTooMany", err)
	}
	// Both slots taken: another north server is told to retry.
	other := newReceiverOn(t, "127.0.0.2")
	if _, _, err := w.push.Create(context.Background(), push.Owner{Username: "north-2", IP: netip.MustParseAddr("127.0.0.2")}, other.url("/hook"), nil); err != push.ErrVerifiersBusy {
		t.Errorf("a subscribe while every verification slot is taken: %v, want ErrVerifiersBusy", err)
	}
	if n, m := len(r.deliveries()), len(other.deliveries()); n != 2 || m != 0 {
		t.Errorf("the refused subscribes posted: %d requests at north-1's url (want its verification and the delivery), %d at north-2's", n, m)
	}

	letGo()
	for range 2 {
		if err := <-hanging; err == nil || err.Error() != "the url did not accept the subscription.verify event: answered 500 Internal Server Error; answer it with a 2xx, then subscribe again" {
			t.Errorf("a released verification: %v", err)
		}
	}
	// Their slots and their places under the limit are free again.
	w.subscribe(owner, r.url("/hook"))
}

// A north server verifies VerifyBurst urls, then VerifyRate a second;
// another is not held back by it.
func TestVerificationsHaveARatePerNorthServer(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.VerifyRate, o.VerifyBurst, o.PerNorthServer = 1.0/3600, 2, 10 })
	r := newReceiver(t)
	owner := push.Owner{Username: "north-1", IP: loopback}
	w.subscribe(owner, r.url("/hook"))
	w.subscribe(owner, r.url("/hook"))
	if _, _, err := w.push.Create(context.Background(), owner, r.url("/hook"), nil); err != push.ErrTooFast {
		t.Errorf("a third verification within the hour, at one an hour after two: %v, want ErrTooFast", err)
	}
	if n := len(r.deliveries()); n != 2 {
		t.Errorf("%d verifications posted, want 2", n)
	}
	w.subscribe(push.Owner{Username: "north-2", IP: loopback}, r.url("/hook"))
}

// newReceiverOn is a receiver listening on ip.
func newReceiverOn(t *testing.T, ip string) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	r.listening()
	return r
}
