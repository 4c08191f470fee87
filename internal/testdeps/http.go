package testdeps

import (
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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// The tests' side of HTTP: every request a test sends to northd, whether
// it runs in the test's process or as the built binary, goes through
// Send, so that what holds for every answer can be checked in one place.

// Answer is what a test reads back of one response.
type Answer struct {
	Status int
	Header http.Header
	Body   string
}

// Send sends req with client and reads the whole answer, and checks it,
// and the request when the answer is a success, against docs/openapi.yaml
// (CheckAnswer): an answer the document does not describe fails tb's
// test, without stopping it. It is the one place every request of Call,
// Try, LoginToken and MetricValue goes through.
func Send(tb testing.TB, client *http.Client, req *http.Request) (Answer, error) {
	tb.Helper()
	var reqBody []byte
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return Answer{}, err
		}
		reqBody, err = io.ReadAll(body)
		if err != nil {
			return Answer{}, err
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, fmt.Errorf("reading the answer to %s %s: %w", req.Method, req.URL, err)
	}
	reportMismatch(tb, func(doc *openapi3.T) error {
		return checkAnswer(doc, req.Method, req.URL.RequestURI(), req.Header, reqBody, resp.StatusCode, resp.Header, b)
	})
	return Answer{resp.StatusCode, resp.Header, string(b)}, nil
}

// Try sends one request, body as its body; bearer, when not empty, goes in
// Authorization. It returns the error instead of failing the test: for a
// goroutine of its own, or for a request that may find no one listening.
// An answer the document does not describe fails the test all the same.
func Try(tb testing.TB, client *http.Client, method, url, bearer, body string) (Answer, error) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return Send(tb, client, req)
}

// Call is Try failing the test when no answer comes.
func Call(tb testing.TB, client *http.Client, method, url, bearer, body string) Answer {
	tb.Helper()
	a, err := Try(tb, client, method, url, bearer, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

// ClientFrom is an HTTP client whose connections come from the loopback
// address from, so that a test can log in as several client addresses.
func ClientFrom(from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// loginOK is the login's success answer, byte for byte, around its token.
var loginOK = regexp.MustCompile(`^\{"code": 0, "token": "([0-9a-f]{32})", "description": "success"\}$`)

// TokenIn is the token of a login's success answer, body; ok is false for
// any other answer.
func TokenIn(body string) (token string, ok bool) {
	m := loginOK.FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// LoginToken posts body to base's /north/login and returns the token,
// failing the test unless the login succeeds.
func LoginToken(tb testing.TB, client *http.Client, base, body string) string {
	tb.Helper()
	a := Call(tb, client, "POST", base+"/north/login", "", body)
	token, ok := TokenIn(a.Body)
	if a.Status != 200 || !ok {
		tb.Fatalf("login %s at %s: %d %q", body, base, a.Status, a.Body)
	}
	return token
}

// MetricValue reads one series, as /metrics spells it with its labels,
// from the admin listener at admin (host:port), failing the test when it
// is not there.
func MetricValue(tb testing.TB, admin, series string) float64 {
	tb.Helper()
	a := Call(tb, http.DefaultClient, "GET", "http://"+admin+"/metrics", "", "")
	for _, line := range strings.Split(a.Body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("series %s on %s: %v", series, admin, err)
			}
			return f
		}
	}
	tb.Fatalf("no series %s in the /metrics of %s", series, admin)
	return 0
}

// PortOf is the port of a host:port address: the name of a subsystem
// listening there without NAME= in -listen.
func PortOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// SelfSignedCert writes a certificate for 127.0.0.1 named name, valid for
// the hour around now, and its key into dir, and returns their paths and a
// pool that trusts it.
func SelfSignedCert(tb testing.TB, dir, name string) (certFile, keyFile string, roots *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		tb.Fatal(err)
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
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
