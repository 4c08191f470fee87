package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// answer is what a test reads back of one response.
type answer struct {
	status int
	header http.Header
	body   string
}

// call sends one request; bearer, when not empty, goes in Authorization.
func call(t *testing.T, client *http.Client, method, url, bearer, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// tryLogin is call for a goroutine of its own: status -1 when no answer
// came.
func tryLogin(client *http.Client, base, body string) answer {
	resp, err := client.Post(base+"/north/login", "application/json", strings.NewReader(body))
	if err != nil {
		return answer{status: -1}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address from, so that a test can log in as several client addresses.
func clientFrom(from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

var tokenIn = regexp.MustCompile(`^\{"code": 0, "token": "([0-9a-f]{32})", "description": "success"\}$`)

// loginToken logs in and returns the token, failing the test otherwise.
func loginToken(t *testing.T, client *http.Client, base, body string) string {
	t.Helper()
	a := call(t, client, "POST", base+"/north/login", "", body)
	m := tokenIn.FindStringSubmatch(a.body)
	if a.status != 200 || m == nil {
		t.Fatalf("login %s: %d %q", body, a.status, a.body)
	}
	return m[1]
}

// loginAs logs username in at ip (any password does in open mode).
func loginAs(t *testing.T, addr, username, ip string) string {
	t.Helper()
	return loginToken(t, http.DefaultClient, "http://"+addr, fmt.Sprintf(`{"username":%q,"password":"pw","ip":%q}`, username, ip))
}

func logoutToken(t *testing.T, addr, token string) {
	t.Helper()
	if a := call(t, http.DefaultClient, "POST", "http://"+addr+"/north/logout", token, ""); a.status != 200 {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
}

const (
	wrongCredentials = `{"code": 2, "token": "", "description": "username or password is incorrect"}`
	tooManyFailures  = `{"code": 3, "token": "", "description": "too many failed logins; wait the Retry-After seconds before trying again"}`
	storeUnavailable = `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}`
)

// metricValue reads one series from the admin listener's /metrics.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	a := call(t, http.DefaultClient, "GET", "http://"+admin+"/metrics", "", "")
	for _, line := range strings.Split(a.body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// reload sends northd SIGHUP, as an operator does, and returns once it has
// counted the reload, ok or failed: northd counts it last, after the
// tokens it ends.
func reload(t *testing.T, n *testdeps.Northd) {
	t.Helper()
	reloads := func() float64 {
		return metricValue(t, n.Admin, `northd_reloads_total{result="ok"}`) + metricValue(t, n.Admin, `northd_reloads_total{result="failed"}`)
	}
	before := reloads()
	n.Signal(t, syscall.SIGHUP)
	testdeps.WaitFor(t, "northd to count the reload", func() bool { return reloads() == before+1 })
}

// eachStore runs test with the memory store and with a Redis store of
// its own.
func eachStore(t *testing.T, test func(t *testing.T, store ...string)) {
	t.Run("memory", func(t *testing.T) { test(t) })
	t.Run("redis", func(t *testing.T) { test(t, "-store", testdeps.StartRedis(t).URL()) })
}

// portOf is the port of a host:port address: the name of a subsystem
// listening there without NAME= in -listen.
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

// hashPassword is northd hash-password's hash of password.
func hashPassword(t *testing.T, password string) string {
	t.Helper()
	r := testdeps.RunNorthd(t, bin, testdeps.Options{}, password+"\n", "hash-password")
	if r.Code != 0 {
		t.Fatalf("northd hash-password: exit %d\n%s", r.Code, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
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

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and
// returns their paths and a pool that trusts it.
func selfSignedCert(t *testing.T, dir, name string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// rawRoundTrip writes raw, a request as bytes, to a new connection to
// addr and reads one response, for requests net/http will not send (two
// Authorization headers, headers past any limit).
func rawRoundTrip(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c := testdeps.DialKept(t, addr)
	c.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %.100q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to %.100q: %v", raw, err)
	}
	return resp, string(body)
}
