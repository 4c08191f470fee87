package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"northd/contract"
)

// The known north servers of auth-storm and verify: north server k (from 0)
// logs in as north-<k+1> with the password loadtest-secret-<k+1>, from the
// address 172.16.0.0 + k + 1, which is both the login's "ip" and the client
// address a trusted proxy forwards for it (X-Forwarded-For). `loadtest
// write-users` writes the users file that holds them.
//
// The storm comes from 10.0.0.0 + j + 1 for j below -storm-addresses, so
// the two never share an address, and guesses passwords no known server
// has.

// maxNorthServers keeps the known servers' addresses inside 172.16.0.0/16.
const maxNorthServers = 65535

// maxStormAddrs keeps the storm inside 10.0.0.0/12, clear of probeAddr.
const maxStormAddrs = 1 << 20

// probeAddr is where auth-storm's one wrong login before the load comes
// from: no storm request does.
const probeAddr = "10.255.255.254"

type northServer struct{ username, password, ip string }

func knownServer(k int) northServer {
	v := k + 1
	return northServer{
		username: "north-" + strconv.Itoa(v),
		password: "loadtest-secret-" + strconv.Itoa(v),
		ip:       fmt.Sprintf("172.16.%d.%d", v>>8&0xff, v&0xff),
	}
}

// loginBody is the known server's login with the right password, its
// JSON as compact as a client would send it.
func (s northServer) loginBody() []byte {
	return []byte(`{"username":"` + s.username + `","password":"` + s.password + `","ip":"` + s.ip + `"}`)
}

// stormAddr is the storm's j-th client address (j from 0).
func stormAddr(j uint64) string {
	v := j + 1
	return fmt.Sprintf("10.%d.%d.%d", v>>16&0xff, v>>8&0xff, v&0xff)
}

// stormLogin is the storm's n-th login: every other one guesses the
// password of a known user (north-1 … north-<north>, which then also
// reach -max-user-login-failures, while the known servers keep logging in
// from their cached credentials), the rest try usernames that do not
// exist (which northd checks against a dummy hash of the same cost). No
// "ip": a stranger does not say which north server it is.
func stormLogin(n uint64, north int) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"username":"`...)
	if n%2 == 0 {
		b = append(b, "north-"...)
		b = strconv.AppendUint(b, (n/2)%uint64(north)+1, 10)
	} else {
		b = append(b, "nobody-"...)
		b = strconv.AppendUint(b, (n/2)%1000, 10)
	}
	b = append(b, `","password":"guess-`...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, `"}`...)
}

// stormAnswers are the only answers the storm may get: the refusal of
// wrong credentials, and the two that refuse without checking a password.
func stormAnswers() []answer {
	return []answer{
		{status: contract.WrongCredentialsStatus, body: []byte(contract.WrongCredentialsBody), challenge: contract.Challenge},
		{status: contract.TooManyFailuresStatus, body: []byte(contract.TooManyFailuresBody), retryAfter: true},
		{status: contract.HashBusyStatus, body: []byte(contract.HashBusyBody), retryAfter: true},
	}
}

// defaultAuthStormMix: a fifth of the requests are known servers' logins.
const defaultAuthStormMix = "known=1,storm=4"

func knownCase(north int) reqCase {
	bodies := make([][]byte, north)
	for k := range bodies {
		bodies[k] = knownServer(k).loginBody()
	}
	ips := make([]string, north)
	for k := range ips {
		ips[k] = knownServer(k).ip
	}
	return reqCase{name: "known", method: http.MethodPost, path: "/north/login",
		body:   func(n uint64) []byte { return bodies[n%uint64(north)] },
		header: func(n uint64, _ int, h http.Header) { h["X-Forwarded-For"] = []string{ips[n%uint64(north)]} },
		want:   expectation{status: 200, contentType: ctJSON, login: true}}
}

func stormCase(north, addrs int) reqCase {
	return reqCase{name: "storm", method: http.MethodPost, path: "/north/login",
		body: func(n uint64) []byte { return stormLogin(n, north) },
		// The address changes on every request and comes round again
		// after addrs of them.
		header: func(n uint64, _ int, h http.Header) {
			h["X-Forwarded-For"] = []string{stormAddr(n % uint64(addrs))}
		},
		want: expectation{contentType: ctJSON, oneOf: stormAnswers()}}
}

// authStormScenario: known north servers logging in with the right
// password (cached after the first login, which prime makes) while a storm
// of wrong passwords comes from many client addresses. northd must run
// with -users (loadtest write-users) and -trusted-proxies 127.0.0.1, so
// that X-Forwarded-For stands for the client address.
func authStormScenario(so scenarioOptions) (*scenario, error) {
	mix := so.mix
	if mix == "" {
		mix = defaultAuthStormMix
	}
	cs, ws, err := parseMix(mix, map[string]reqCase{
		"known": knownCase(so.northServers),
		"storm": stormCase(so.northServers, so.stormAddrs),
	})
	if err != nil {
		return nil, err
	}
	sc := weighted("auth-storm", cs, ws)
	sc.prime = func(ctx context.Context, p *primer) error {
		if _, err := p.loginAll(ctx, so.northServers); err != nil {
			return err
		}
		return p.probeWrongPassword(ctx)
	}
	return sc, nil
}

// verifyScenario: each known north server logs in once on each target
// (prime), then only GET /north/verify with its token, on the target that
// issued it. Every answer must be the verification of that server's
// username and ip.
func verifyScenario(so scenarioOptions) *scenario {
	north := uint64(so.northServers)
	prefixes := make([]string, north)
	for k := range prefixes {
		s := knownServer(k)
		prefixes[k] = contract.VerifyPrefix(s.username, s.ip)
	}
	var tokens [][]string // [target][k] "Bearer <token>", set by prime before any request
	c := reqCase{name: "verify", method: http.MethodGet, path: contract.VerifyPath, indexed: true,
		header: func(n uint64, target int, h http.Header) {
			h["Authorization"] = []string{tokens[target][n%north]}
		},
		want: expectation{status: 200, contentType: ctJSON,
			verifyPrefix: func(n uint64) string { return prefixes[n%north] }}}
	sc := weighted("verify", []reqCase{c}, []int{1})
	sc.prime = func(ctx context.Context, p *primer) error {
		t, err := p.loginAll(ctx, so.northServers)
		for i := range t {
			for k := range t[i] {
				t[i][k] = "Bearer " + t[i][k]
			}
		}
		tokens = t
		return err
	}
	return sc
}

// primer logs the known north servers in before the load, with a plain
// client of its own: these requests are not measured, but their answers
// are checked as strictly, and their tokens join the run's.
type primer struct {
	client  *http.Client
	targets []string
	tokens  *tokenSet
	mu      sync.Mutex // tokens
}

func newPrimer(targets []string, tokens *tokenSet, timeout time.Duration) *primer {
	return &primer{targets: targets, tokens: tokens,
		client: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: primeWorkers}}}
}

// primeWorkers log in at once: enough to prime thousands of servers in
// open mode quickly, few enough not to fill a hashing queue.
const primeWorkers = 4

// loginAll logs north servers 0 … north-1 in on every target and returns
// their tokens, [target][k].
func (p *primer) loginAll(ctx context.Context, north int) ([][]string, error) {
	defer p.client.CloseIdleConnections()
	tokens := make([][]string, len(p.targets))
	for i := range tokens {
		tokens[i] = make([]string, north)
	}
	type job struct{ target, k int }
	jobs := make(chan job)
	errs := make(chan error, primeWorkers)
	var wg sync.WaitGroup
	for range primeWorkers {
		wg.Go(func() {
			for j := range jobs {
				tok, err := p.login(ctx, p.targets[j.target], knownServer(j.k))
				if err != nil {
					errs <- err
					return
				}
				tokens[j.target][j.k] = tok
			}
		})
	}
	var err error
feed:
	for t := range p.targets {
		for k := range north {
			select {
			case jobs <- job{t, k}:
			case err = <-errs:
				break feed
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return tokens, err
}

// login logs s in on target and returns its token, checked as the verifier
// checks a login.
func (p *primer) login(ctx context.Context, target string, s northServer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/north/login", bytes.NewReader(s.loginBody()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", s.ip)
	status, h, body, err := p.do(req)
	if err != nil {
		return "", fmt.Errorf("logging %s in on %s before the load: %v", s.username, target, err)
	}
	v := &verifier{tokens: newTokenSet()}
	want := expectation{status: 200, contentType: ctJSON, login: true}
	if kind := v.check(&want, status, h, body); kind != "" {
		hint := ""
		if status == contract.WrongCredentialsStatus {
			hint = " (does northd's -users file hold the known servers? `loadtest write-users -n N FILE` writes one)"
		}
		return "", fmt.Errorf("logging %s in on %s before the load: %s: status %d, body %.200q%s", s.username, target, kind, status, body, hint)
	}
	tok, _ := contract.LoginToken(string(body))
	var raw [16]byte
	hex.Decode(raw[:], []byte(tok)) // checked above
	p.mu.Lock()
	fresh := p.tokens.add(raw)
	p.mu.Unlock()
	if !fresh {
		return "", fmt.Errorf("logging %s in on %s before the load: token %s was seen before", s.username, target, tok)
	}
	return tok, nil
}

// probeWrongPassword sends one wrong password to every target before the
// storm: a server that lets it in is in open mode, and the storm would
// only measure logins.
func (p *primer) probeWrongPassword(ctx context.Context) error {
	defer p.client.CloseIdleConnections()
	for _, target := range p.targets {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/north/login",
			strings.NewReader(`{"username":"north-1","password":"not-the-password"}`))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", probeAddr)
		status, _, body, err := p.do(req)
		switch {
		case err != nil:
			return fmt.Errorf("a wrong password before the storm, on %s: %v", target, err)
		case status == 200:
			return fmt.Errorf("%s let a wrong password in: run northd with -users FILE (loadtest write-users makes one) and -trusted-proxies 127.0.0.1", target)
		case status != contract.WrongCredentialsStatus:
			return fmt.Errorf("a wrong password before the storm, on %s: status %d, body %.200q; want %d", target, status, body, contract.WrongCredentialsStatus)
		}
	}
	return nil
}

func (p *primer) do(req *http.Request) (int, http.Header, []byte, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, body, nil
}
