package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"northd/contract"
)

// The credentials every wrk login script sends (bench/wrk/login.lua,
// mixed.lua, pipeline.lua): the users file holds this one user, so that
// the same script is a cached login against northd -users and an
// open-mode login against northd.
const (
	benchUser     = "north-1"
	benchPassword = "secret"
	// bcryptCost is the lowest bcrypt allows: only the first login of a
	// run checks the hash, the rest hit northd's credential cache, so
	// the cost does not show in what is measured. northd logs a warning
	// about it, which is right for production and moot here.
	bcryptCost = 4
)

// authFiles are the users file and the TLS certificate and key the
// northd-users and northd-tls servers run with, made afresh in a
// temporary directory for each comparison and removed after it, so that
// nothing of them lands in the repository.
type authFiles struct {
	dir       string
	users     string // username:hash, one line
	usersHow  string // how the hash was made, for the report
	cert, key string // PEM
	roots     *x509.CertPool
	certHow   string
}

func makeAuthFiles() (*authFiles, error) {
	dir, err := os.MkdirTemp("", "northd-bench-auth-")
	if err != nil {
		return nil, err
	}
	a := &authFiles{dir: dir, users: filepath.Join(dir, "users"), cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	line, how, err := usersLine(benchUser, benchPassword)
	if err == nil {
		a.usersHow = how
		// 0600: northd warns about a users file others can read.
		err = os.WriteFile(a.users, []byte(line+"\n"), 0o600)
	}
	if err == nil {
		err = a.writeCert()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return a, nil
}

func (a *authFiles) remove() { os.RemoveAll(a.dir) }

// usersLine is "user:hash" with a bcrypt hash of cost bcryptCost: from
// htpasswd when it is installed, as an operator would make it, else from
// golang.org/x/crypto/bcrypt.
func usersLine(user, password string) (line, how string, err error) {
	if _, lerr := exec.LookPath("htpasswd"); lerr == nil {
		out, herr := exec.Command("htpasswd", "-nbB", "-C", fmt.Sprint(bcryptCost), user, password).Output()
		// htpasswd -n prints the line and a blank one.
		if l := strings.TrimSpace(string(out)); herr == nil && strings.HasPrefix(l, user+":$2") {
			return l, fmt.Sprintf("htpasswd -nbB -C %d", bcryptCost), nil
		}
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", "", err
	}
	return user + ":" + string(h), fmt.Sprintf("golang.org/x/crypto/bcrypt, cost %d", bcryptCost), nil
}

// writeCert makes a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost, valid for a day, and a pool that trusts it for compare's own
// probes (wrk does not check certificates).
func (a *authFiles) writeCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "northd bench"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // its own root, so that a pool can trust it
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(a.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(a.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	a.roots = x509.NewCertPool()
	a.roots.AddCert(cert)
	a.certHow = "self-signed ECDSA P-256 for 127.0.0.1, made by compare"
	return nil
}

// httpClient is what compare probes a server with: it trusts the
// certificate of authFiles (nil: plain HTTP only).
func httpClient(a *authFiles) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	if a != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: a.roots}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// verifyLogin is the login whose token the verify route checks. Its ip is
// one no wrk script logs in from: a later login from the same ip would
// replace the token, and every verification would get 401.
const (
	verifyIP        = "192.0.2.99"
	verifyLoginBody = `{"username": "` + benchUser + `", "password": "` + benchPassword + `", "ip": "` + verifyIP + `"}`
)

// loginForVerify logs in once on r and checks that the token verifies, as
// the contract says: the verify route then sends that token with every
// request. It runs before every measurement of the route (not once per
// comparison), so that a token replaced or a server restarted in between
// cannot turn the measurement into one of 401s.
func loginForVerify(r *running) ([]string, error) {
	defer r.client.CloseIdleConnections()
	resp, err := r.client.Post(r.baseURL()+"/north/login", "application/json", strings.NewReader(verifyLoginBody))
	if err != nil {
		return nil, fmt.Errorf("login for the verify route: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("login for the verify route: status %d: %.200q", resp.StatusCode, body)
	}
	token, err := contract.LoginToken(string(body))
	if err != nil {
		return nil, fmt.Errorf("login for the verify route: %v: %.200q", err, body)
	}
	req, _ := http.NewRequest("GET", r.baseURL()+contract.VerifyPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verify: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("verify of a fresh token: status %d: %.200q", resp.StatusCode, body)
	}
	if _, err := contract.VerifyExpiresIn(body, contract.VerifyPrefix(benchUser, verifyIP)); err != nil {
		return nil, fmt.Errorf("verify of a fresh token: %v: %.200q", err, body)
	}
	return []string{token}, nil
}

// errNoAuthFiles is returned when a server needs authFiles that were not
// made.
var errNoAuthFiles = errors.New("no users file or certificate was made")
