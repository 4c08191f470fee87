package lbtest

import (
	"net/http"
	"strconv"
	"testing"

	"northd/internal/testdeps"
)

// TestPreforkSharesTokensThroughRedis: with -store, the children of one
// -prefork service agree on tokens, though each has its own memory. Logins
// and verifications go over fresh connections, which the kernel spreads
// over both children; each child must issue logins and answer
// verifications, and every verification must find its token, which in
// memory it would for only about half of them.
func TestPreforkSharesTokensThroughRedis(t *testing.T) {
	redis := testdeps.StartRedis(t)
	// -prefork takes fixed ports: the listen port and the admin ports of
	// the two children, all consecutive.
	port := fixedFreePorts(t, 3)
	admin := port + 1
	startPrefork(t, "-listen", "alarms=127.0.0.1:"+strconv.Itoa(port), "-admin", "127.0.0.1:"+strconv.Itoa(admin), "-store", redis.URL())

	fresh := &http.Client{Timeout: patience, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	const n = 40
	var tokens []string
	for i := range n {
		tokens = append(tokens, login(t, fresh, "127.0.0.1:"+strconv.Itoa(port), "u", "192.0.2."+strconv.Itoa(i+1)))
	}
	for i, tok := range tokens {
		if a := testdeps.Call(t, fresh, "GET", base+"/north/verify", tok, ""); a.Status != 200 {
			t.Fatalf("verify %d: %d %s", i, a.Status, a.Body)
		}
	}
	for k := range 2 {
		logins := testdeps.MetricValue(t, "127.0.0.1:"+strconv.Itoa(admin+k), `northd_logins_total{subsystem="alarms"}`)
		verified := testdeps.MetricValue(t, "127.0.0.1:"+strconv.Itoa(admin+k), `northd_token_checks_total{subsystem="alarms",route="verify",result="valid"}`)
		if logins == 0 || verified == 0 {
			t.Errorf("child %d issued %v tokens and verified %v: the kernel sent it no share, so nothing crossed children", k, logins, verified)
		}
	}
}
