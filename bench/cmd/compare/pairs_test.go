package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestParsePairs(t *testing.T) {
	ps, err := parsePairs("login-cached,verify,https")
	if err != nil || len(ps) != 3 {
		t.Fatalf("parsePairs = %v, %v", ps, err)
	}
	want := []struct {
		a, b side
		goal float64
	}{
		{side{"northd-users", "login"}, side{"northd", "login"}, 0.95},
		{side{"northd-users", "verify"}, side{"northd-users", "home"}, 0.95},
		{side{"northd-tls", "login"}, side{"northd", "login"}, 0},
	}
	for i, w := range want {
		if ps[i].a != w.a || ps[i].b != w.b || ps[i].goal != w.goal {
			t.Errorf("pair %s: %v ÷ %v goal %v; want %v ÷ %v goal %v", ps[i].name, ps[i].a, ps[i].b, ps[i].goal, w.a, w.b, w.goal)
		}
	}
	for _, none := range []string{"", "none"} {
		if ps, err := parsePairs(none); err != nil || len(ps) != 0 {
			t.Errorf("parsePairs(%q) = %v, %v; want none", none, ps, err)
		}
	}
	if _, err := parsePairs("login-cached,nope"); err == nil {
		t.Error("an unknown pair was accepted")
	}
	// Every side names a server compare can start and a route it knows.
	for _, p := range pairs {
		for _, s := range []side{p.a, p.b} {
			found := false
			for _, sp := range specs {
				found = found || sp.name == s.server
			}
			if _, ok := routeNamed(s.route); !ok || !found {
				t.Errorf("pair %s: side %v unknown", p.name, s)
			}
		}
	}
}

func TestMet(t *testing.T) {
	for _, tt := range []struct {
		goal, m, lo float64
		unexpected  int64
		want        string
	}{
		{0.95, 0.99, 0.96, 0, "yes"},
		{0.95, 0.97, 0.93, 0, "by the median only"},
		{0.95, 0.94, 0.90, 0, "no"},
		{0, 0.80, 0.70, 0, "—"},
		{0.95, 0.99, 0.96, 3, "not judged: 3 responses of the wrong status"},
	} {
		if got := met(tt.goal, tt.m, tt.lo, tt.unexpected); got != tt.want {
			t.Errorf("met(%v, %v, %v, %d) = %q, want %q", tt.goal, tt.m, tt.lo, tt.unexpected, got, tt.want)
		}
	}
}

// The users file holds the credentials the wrk scripts send, and the
// certificate serves 127.0.0.1.
func TestAuthFiles(t *testing.T) {
	a, err := makeAuthFiles()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		a.remove()
		if _, err := os.Stat(a.dir); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", a.dir, err)
		}
	}()
	b, err := os.ReadFile(a.users)
	if err != nil {
		t.Fatal(err)
	}
	user, hash, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user != "north-1" || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("users file %q: want one line north-1:HASH", b)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("secret")); err != nil {
		t.Errorf("the hash does not match the password the wrk scripts send: %v", err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != 4 {
		t.Errorf("bcrypt cost %d, %v; want 4", cost, err)
	}
	if fi, err := os.Stat(a.users); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v, %v; want 0600", fi.Mode(), err)
	}

	pair, err := tls.LoadX509KeyPair(a.cert, a.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.roots, DNSName: "127.0.0.1", CurrentTime: time.Now()}); err != nil {
		t.Errorf("the certificate does not verify for 127.0.0.1 with its own pool: %v", err)
	}
	// A TLS handshake with it, as northd and compare's probes do.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{RootCAs: a.roots})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.Close()
}
