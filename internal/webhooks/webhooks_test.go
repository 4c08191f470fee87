package webhooks

import (
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The reference vector of the Standard Webhooks specification (the
// "sign function works" case of its libraries' tests, which Svix's
// documentation shows too), computed independently with Python's hmac.
func TestSignMatchesTheSpecificationsVector(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := string(Sign(nil, key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	two := string(SignatureHeader(nil, [][]byte{key, []byte("0123456789abcdef01234567")}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`)))
	if first, _, _ := strings.Cut(two, " "); first != got || strings.Count(two, "v1,") != 2 {
		t.Errorf("SignatureHeader with two keys = %s", two)
	}
}

// The specification's reference library verifies what SignatureHeader
// writes, under each of a rotation's two keys, and nothing under another.
func TestTheReferenceLibraryVerifiesSignatureHeader(t *testing.T) {
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")}
	const id, body = "msg_sub_0123456789abcdef01234567_e1-42", `[{"id":"e1-42"}]`
	ts := time.Now().Unix()
	header := http.Header{}
	header.Set(HeaderID, id)
	header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	header.Set(HeaderSignature, string(SignatureHeader(nil, keys, id, ts, []byte(body))))
	for i, key := range append(keys, []byte("a key that signed nothing here..")) {
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify([]byte(body), header); (err == nil) != (i < len(keys)) {
			t.Errorf("key %d: Verify = %v", i, err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	key := make([]byte, 32)
	body := make([]byte, 4096)
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		dst = Sign(dst[:0], key, "msg_sub_0123456789abcdef01234567_e1-42", 1614265330, body)
	}
}

func TestParseSecret(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if key, err := ParseSecret(s); err != nil || len(key) != 32 || !strings.HasPrefix(s, "whsec_") {
		t.Errorf("NewSecret %q: key %d bytes, %v", s, len(key), err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_AAAA", "whsec_" + strings.Repeat("A", 100)} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted it", bad)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("whsec_")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecret(s)
		if err == nil && (len(key) < 24 || len(key) > 64 || !strings.HasPrefix(s, "whsec_")) {
			t.Fatalf("ParseSecret(%q) = %d bytes", s, len(key))
		}
	})
}

func mustAllow(t testing.TB, list ...string) *Allow {
	a, err := ParseAllow(list)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPermits(t *testing.T) {
	for _, c := range []struct {
		allow []string
		ip    string
		want  bool
	}{
		{nil, "10.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "10.1.2.3", true},
		{[]string{"10.0.0.0/8"}, "11.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "::ffff:10.1.2.3", true},
		{[]string{"0.0.0.0/0"}, "192.0.2.1", true},
		{[]string{"0.0.0.0/0"}, "127.0.0.1", false},       // 0.0.0.0/0 does not name loopback
		{[]string{"0.0.0.0/0"}, "169.254.169.254", false}, // nor the metadata service
		{[]string{"0.0.0.0/0"}, "169.254.1.1", false},
		{[]string{"0.0.0.0/0"}, "0.0.0.1", false},
		{[]string{"0.0.0.0/0"}, "224.0.0.1", false},
		{[]string{"0.0.0.0/0"}, "255.255.255.255", false},
		{[]string{"0.0.0.0/0"}, "100.100.100.200", false},
		{[]string{"100.64.0.0/10"}, "100.100.100.200", false},
		{[]string{"100.64.0.0/10"}, "100.100.100.201", true},
		{[]string{"0.0.0.0/0"}, "168.63.129.16", false}, // outside link-local, a metadata address all the same
		{[]string{"168.0.0.0/8"}, "168.63.129.16", false},
		{[]string{"168.0.0.0/8"}, "168.63.129.17", true},
		{[]string{"169.254.0.0/16"}, "169.254.170.2", false},
		{[]string{"0.0.0.0/0"}, "192.0.0.192", false},
		{[]string{"127.0.0.0/8"}, "127.0.0.1", true}, // named
		{[]string{"127.0.0.1"}, "127.0.0.1", true},
		{[]string{"127.0.0.1"}, "127.0.0.2", false},
		{[]string{"169.254.0.0/16"}, "169.254.1.1", true},
		{[]string{"169.254.0.0/16"}, "169.254.169.254", false}, // link-local named, the metadata address not
		{[]string{"169.254.169.254/32"}, "169.254.169.254", true},
		{[]string{"::/0"}, "2001:db8::1", true},
		{[]string{"::/0"}, "::1", false},
		{[]string{"::/0"}, "fe80::1", false},
		{[]string{"::/0"}, "fd00:ec2::254", false},
		{[]string{"::/0"}, "ff02::1", false},
		{[]string{"::1/128"}, "::1", true},
		{[]string{"::ffff:127.0.0.0/104"}, "127.0.0.1", true},
	} {
		if got, why := mustAllow(t, c.allow...).Permits(netip.MustParseAddr(c.ip)); got != c.want || (!got && why == "") {
			t.Errorf("-push-allow %v: Permits(%s) = %v %q, want %v", c.allow, c.ip, got, why, c.want)
		}
	}
	if _, err := ParseAllow([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 accepted")
	}
}

// An IPv6 address that a translator carries to IPv4 (NAT64, 6to4, Teredo,
// IPv4-compatible, SIIT) goes only where -push-allow names the translation
// range, and then only where the IPv4 address it carries is permitted too.
func TestPermitsTranslatedAddresses(t *testing.T) {
	catchAll := []string{"::/0", "0.0.0.0/0"}
	for _, c := range []struct {
		allow []string
		ip    string
		want  bool
		why   string // part of the reason when refused
	}{
		// A catch-all names no translation range: before, each of these was permitted.
		{catchAll, "64:ff9b::a9fe:a9fe", false, "169.254.169.254"},
		{catchAll, "64:ff9b::c000:201", false, "64:ff9b::/96"},
		{catchAll, "64:ff9b:1::c000:201", false, "64:ff9b:1::/48"},
		{catchAll, "2002:7f00:1::1", false, "127.0.0.1"},
		{catchAll, "2002:c000:201::1", false, "2002::/16"},
		{catchAll, "2001:0:c000:201::80ff:fffe", false, "127.0.0.1"}, // Teredo client 0x7f000001 ^ 0xffffffff
		{catchAll, "::7f00:1", false, "127.0.0.1"},
		{catchAll, "::c000:201", false, "::/96"},
		{catchAll, "::ffff:0:7f00:1", false, "127.0.0.1"},
		{catchAll, "2001:db8::1", true, ""}, // 2001:db8::/32 is not Teredo's 2001::/32
		{catchAll, "::1", false, "loopback"},
		// Named, the IPv4 address decides, with its own rules.
		{[]string{"64:ff9b::/96", "192.0.2.0/24"}, "64:ff9b::c000:201", true, ""},
		{[]string{"64:ff9b::/96"}, "64:ff9b::c000:201", false, "192.0.2.1 is outside -push-allow"},
		{[]string{"64:ff9b::/96", "0.0.0.0/0"}, "64:ff9b::a9fe:a9fe", false, "cloud metadata"},
		{[]string{"64:ff9b::/96", "0.0.0.0/0"}, "64:ff9b::7f00:1", false, "loopback"},
		{[]string{"64:ff9b::/96", "169.254.169.254"}, "64:ff9b::a9fe:a9fe", true, ""},
		{[]string{"64:ff9b::c000:201", "192.0.2.0/24"}, "64:ff9b::c000:201", true, ""},
		{[]string{"64:ff9b::c000:201", "192.0.2.0/24"}, "64:ff9b::c000:202", false, "names that range"},
		// 64:ff9b:1::/48 is local use: the entry's length is the translator's, which says where the IPv4 address sits (RFC 6052).
		{[]string{"64:ff9b:1::/96", "192.0.2.0/24"}, "64:ff9b:1::c000:201", true, ""},
		{[]string{"64:ff9b:1::/64", "192.0.2.0/24"}, "64:ff9b:1:0:c0:2:100:0", true, ""},
		{[]string{"64:ff9b:1::/64", "0.0.0.0/0"}, "64:ff9b:1::c000:201", false, "0.0.0.192"}, // bits 72-103 of it
		{[]string{"64:ff9b:1::/48", "192.0.2.0/24"}, "64:ff9b:1:c000:2:100::", true, ""},
		{[]string{"64:ff9b:1::/48", "0.0.0.0/0"}, "64:ff9b:1:a9fe:a9:fe00::", false, "cloud metadata"},
		{[]string{"2002::/16", "192.0.2.0/24"}, "2002:c000:201::1", true, ""},
		{[]string{"2002::/16", "0.0.0.0/0"}, "2002:7f00:1::1", false, "loopback"},
		{[]string{"2001::/32", "192.0.2.0/24"}, "2001:0:c000:201::3fff:fdd2", true, ""},        // server 192.0.2.1, client 192.0.2.45
		{[]string{"2001::/32", "0.0.0.0/0"}, "2001:0:c000:201::80ff:fffe", false, "127.0.0.1"}, // client 127.0.0.1
		{[]string{"2001::/32", "0.0.0.0/0"}, "2001:0:c000:201::5601:5601", false, "169.254.169.254"},
		{[]string{"2001::/32", "192.0.2.0/24"}, "2001:0:7f00:1::3fff:fdd2", false, "127.0.0.1"}, // server 127.0.0.1
		{[]string{"::/96", "0.0.0.0/0"}, "::c000:201", true, ""},
		{[]string{"::/96", "0.0.0.0/0"}, "::7f00:1", false, "loopback"},
		{[]string{"::/96", "0.0.0.0/0"}, "::1", false, "loopback"}, // ::/96 does not name ::1
		{[]string{"::ffff:0:0:0/96", "192.0.2.0/24"}, "::ffff:0:c000:201", true, ""},
	} {
		got, why := mustAllow(t, c.allow...).Permits(netip.MustParseAddr(c.ip))
		if got != c.want || !strings.Contains(why, c.why) || (!got && why == "") {
			t.Errorf("-push-allow %v: Permits(%s) = %v %q, want %v %q", c.allow, c.ip, got, why, c.want, c.why)
		}
	}
}

func TestCheckURL(t *testing.T) {
	a := mustAllow(t, "192.0.2.0/24", "2001:db8::/32")
	login := netip.MustParseAddr("192.0.2.10")
	for _, c := range []struct {
		url     string
		ip      netip.Addr
		problem string // "" when accepted
	}{
		{"http://192.0.2.10:8080/northd", login, ""},
		{"https://192.0.2.10/northd?x=1", login, ""},
		{"http://[2001:db8::1]:8080/h", netip.MustParseAddr("2001:db8::1"), ""},
		{"http://192.0.2.11/northd", login, "is not the ip you logged in with, 192.0.2.10"},
		{"http://north.example/northd", login, `host "north.example" is not an IP address`},
		{"ftp://192.0.2.10/x", login, "is not an http:// or https:// url"},
		{"//192.0.2.10/x", login, "is not an http:// or https:// url"},
		{"http://user:pw@192.0.2.10/x", login, "no user or password"},
		{"http://192.0.2.10/x#f", login, "no #fragment"},
		{"http://10.0.0.1/x", netip.MustParseAddr("10.0.0.1"), "outside -push-allow"},
		{"http://[fe80::1%25eth0]/x", netip.MustParseAddr("fe80::1"), "not the ip you logged in with"},
	} {
		_, err := CheckURL(c.url, c.ip, a)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("CheckURL(%s): %v", c.url, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("CheckURL(%s) = %v, want %q", c.url, err, c.problem)
		}
	}
}

func FuzzCheckURL(f *testing.F) {
	a, _ := ParseAllow([]string{"192.0.2.0/24", "127.0.0.0/8"})
	// With an IPv6 catch-all and the NAT64 range named, a translated
	// address goes only where its IPv4 address could go.
	six, _ := ParseAllow([]string{"192.0.2.0/24", "127.0.0.0/8", "::/0", "64:ff9b::/96"})
	for _, s := range []string{"http://192.0.2.10/x", "http://127.0.0.1:1/", "https://[::ffff:192.0.2.10]/",
		"http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b::c000:20a]/", "http://[2002:7f00:1::1]/", "http://[2001:0:c000:201::80ff:fffe]/", "http://[::7f00:1]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		login := netip.MustParseAddr("192.0.2.10")
		if u, err := CheckURL(s, login, a); err == nil {
			ip, perr := netip.ParseAddr(u.Hostname())
			if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || perr != nil || ip.Unmap() != login {
				t.Fatalf("CheckURL accepted %q", s)
			}
		}
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			return
		}
		if _, err := CheckURL(s, ip, six); err != nil || !ip.Is6() || ip.Is4In6() {
			return
		}
		b := ip.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(ip):
			if b[12] != 127 && (b[12] != 192 || b[13] != 0 || b[14] != 2) {
				t.Fatalf("CheckURL accepted %q, which a translator carries to %d.%d.%d.%d", s, b[12], b[13], b[14], b[15])
			}
		case netip.MustParsePrefix("64:ff9b:1::/48").Contains(ip), netip.MustParsePrefix("2002::/16").Contains(ip),
			netip.MustParsePrefix("2001::/32").Contains(ip), netip.MustParsePrefix("::/96").Contains(ip),
			netip.MustParsePrefix("::ffff:0:0:0/96").Contains(ip), ip == netip.MustParseAddr("::1"):
			t.Fatalf("CheckURL accepted %q under a catch-all", s)
		}
	})
}

// The client refuses, in its dialer, what -push-allow does not permit:
// whatever the url's host was, and whoever redirected there.
func TestClientRefusesInTheDialer(t *testing.T) {
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer redirect.Close()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	defer big.Close()
	o := ClientOptions{Timeout: time.Minute, MaxResponseBytes: 1 << 10}

	// Loopback not named: refused, by address and by name.
	off := mustAllow(t, "0.0.0.0/0").Client(o)
	port := target.URL[strings.LastIndex(target.URL, ":"):]
	for _, u := range []string{target.URL, "http://localhost" + port} {
		_, err := off.Get(u)
		var refused *RefusedError
		if !errors.As(err, &refused) || !IsRefused(err) || !strings.Contains(refused.Reason, "loopback") {
			t.Errorf("GET %s with 0.0.0.0/0: %v, want refused as loopback", u, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the refused target was reached %d times", hits)
	}

	on := mustAllow(t, "127.0.0.0/8").Client(o)
	resp, err := on.Get(target.URL)
	if err != nil || resp.StatusCode != 200 || hits != 1 {
		t.Fatalf("GET with 127.0.0.0/8: %v %v, hits %d", resp, err, hits)
	}
	resp.Body.Close()
	// A redirect comes back as the answer; it is not followed.
	resp, err = on.Get(redirect.URL)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("a redirect: %v %v, want the 302 itself", resp, err)
	}
	resp.Body.Close()
	// No proxy from the environment stands in between.
	t.Setenv("HTTP_PROXY", "http://169.254.169.254:3128")
	if resp, err := on.Get(target.URL); err != nil || hits != 2 {
		t.Fatalf("with HTTP_PROXY set: %v, hits %d", err, hits)
	} else {
		resp.Body.Close()
	}
	resp, err = on.Get(big.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != 1<<10 {
		t.Errorf("read %d bytes of a large answer, want the cap", n)
	}
}

func TestBackoff(t *testing.T) {
	mid := func() float64 { return 0.5 }
	low := func() float64 { return 0 }
	for _, c := range []struct {
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{1, mid, 5 * time.Second},
		{2, mid, 30 * time.Second},
		{3, mid, 2 * time.Minute},
		{4, mid, 10 * time.Minute},
		{5, mid, 30 * time.Minute},
		{6, mid, time.Hour},
		{7, mid, time.Hour},
		{100, mid, time.Hour},
		{1, low, 4 * time.Second},
		{6, low, 48 * time.Minute},
	} {
		if got := Backoff(c.attempt, c.rnd); got != c.want {
			t.Errorf("Backoff(%d) = %v, want %v", c.attempt, got, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"86400", time.Hour, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Sat, 28 Nov 2026 18:00:30 GMT", 30 * time.Second, true},
		{"Sat, 28 Nov 2026 17:00:00 GMT", 0, true},
		{"Sun, 29 Nov 2026 18:00:00 GMT", time.Hour, true},
	} {
		got, ok := RetryAfter(http.Header{"Retry-After": {c.v}}, now)
		if got != c.want || ok != c.ok {
			t.Errorf("RetryAfter(%q) = %v %v, want %v %v", c.v, got, ok, c.want, c.ok)
		}
	}
}

// Whatever a receiver answers in Retry-After, the wait is from none to an
// hour.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := RetryAfter(http.Header{"Retry-After": {v}}, now)
		if d < 0 || d > time.Hour || (!ok && d != 0) {
			t.Fatalf("RetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}

// The categories no local listener makes: an address -push-allow does not
// permit (a url that was allowed before a reload narrowed it), and no
// route.
func TestFailureOfTheDial(t *testing.T) {
	allow, err := ParseAllow([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = allow.Client(ClientOptions{Timeout: time.Minute, MaxResponseBytes: 1}).Post("http://127.0.0.1:9/hook", "application/json", nil)
	if got, want := Failure(err), "address not allowed: -push-allow does not permit it; ask the operator"; got != want {
		t.Errorf("Failure(%v) = %q, want %q", err, got, want)
	}
	noRoute := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
	if got, want := Failure(&url.Error{Op: "Post", URL: "http://10.0.0.1/hook", Err: noRoute}), "unreachable: no route to that address"; got != want {
		t.Errorf("Failure(no route) = %q, want %q", got, want)
	}
}

// The client makes the TLS handshake itself (to tell its failure apart):
// an https receiver whose certificate the roots vouch for, for its IP, is
// reached, over TLS.
func TestClientSpeaksTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	allow, err := ParseAllow([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	resp, err := allow.Client(ClientOptions{Timeout: time.Minute, RootCAs: roots, MaxResponseBytes: 1}).Post(srv.URL+"/hook", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.TLS == nil {
		t.Errorf("an https receiver northd trusts: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
}
