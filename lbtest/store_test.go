package lbtest

import (
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
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
	log := new(testdeps.SyncBuffer)
	cmd := exec.Command(bin, "-prefork", "-listen", "alarms=127.0.0.1:"+strconv.Itoa(port), "-admin", "127.0.0.1:"+strconv.Itoa(admin), "-store", redis.URL())
	cmd.Env = append(cmd.Environ(), "GOMAXPROCS=2")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	testdeps.WaitFor(t, "two children to start", func() bool { return strings.Count(log.String(), "northd started") == 2 })

	fresh := &http.Client{Timeout: patience, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	const n = 40
	var tokens []string
	for i := range n {
		tokens = append(tokens, login(t, fresh, "127.0.0.1:"+strconv.Itoa(port), "u", "192.0.2."+strconv.Itoa(i+1)))
	}
	for i, tok := range tokens {
		req, _ := http.NewRequest("GET", base+"/north/verify", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := fresh.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("verify %d: %d %s", i, resp.StatusCode, body)
		}
	}
	for k := range 2 {
		logins := childMetric(t, admin+k, `northd_logins_total{subsystem="alarms"}`)
		verified := childMetric(t, admin+k, `northd_token_checks_total{subsystem="alarms",route="verify",result="valid"}`)
		if logins == 0 || verified == 0 {
			t.Errorf("child %d issued %v tokens and verified %v: the kernel sent it no share, so nothing crossed children", k, logins, verified)
		}
	}
}

// childMetric reads one series from a child's /metrics.
func childMetric(t *testing.T, adminPort int, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(adminPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
