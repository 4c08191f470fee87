package auth

import (
	"bytes"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// guessAuthenticator is an Authenticator over o, with the password
// checker's queue made big enough (GOMAXPROCS raised while it is made)
// that no guess below is refused for a full queue: every guess the limits
// let through gets a password check.
func guessAuthenticator(t *testing.T, o Options) (*Authenticator, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	procs := runtime.GOMAXPROCS(200)
	a, err := New(o, set, discardLog())
	runtime.GOMAXPROCS(procs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a, set
}

// passwordChecks reads how many password checks the checker has finished.
func passwordChecks(t *testing.T, set *metrics.Set) int {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "northd_password_hash_duration_seconds_count "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no northd_password_hash_duration_seconds_count")
	return 0
}

// Guesses sent all at once from one address get no more password checks
// than the limit allows: each reserves its failure before its check.
func TestConcurrentGuessesGetAtMostTheAllowedChecks(t *testing.T) {
	o := testOptions(testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n"))
	o.MaxAddrFailures, o.FailureWindow = 10, time.Hour
	a, set := guessAuthenticator(t, o)
	const guesses = 40
	client := netip.MustParseAddr("192.0.2.66")
	now := time.Now()
	start := make(chan struct{})
	var wg sync.WaitGroup
	outcomes := make([]Outcome, guesses)
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outcomes[i], _ = a.Check(client, []byte("alice"), []byte("guess"+strconv.Itoa(i)), now)
		}()
	}
	close(start)
	wg.Wait()
	var count [OutcomeCount]int
	for _, o := range outcomes {
		count[o]++
	}
	t.Logf("%d concurrent wrong guesses: %d got a password check, %d were refused 429", guesses, count[WrongPassword], count[AddrLimited])
	if count[WrongPassword] != 10 || count[AddrLimited] != guesses-10 {
		t.Errorf("outcomes %v; want 10 wrong passwords and %d refused for the address", count, guesses-10)
	}
	// The checker counts a check before answering it.
	testdeps.WaitFor(t, "the checker to count its checks", func() bool { return passwordChecks(t, set) >= count[WrongPassword] })
	if n := passwordChecks(t, set); n > 10 {
		t.Errorf("%d password checks, want at most the 10 failures allowed", n)
	}
}
