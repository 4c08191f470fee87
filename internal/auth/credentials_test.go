package auth

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// Reload names the users the new file removed or gave another hash (the
// same password hashed anew included), not those it left alone; a file
// that does not load leaves the one in force, and says why.
func TestReloadNamesChangedUsers(t *testing.T) {
	path := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\nbob:"+testdeps.Bcrypt2ySecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\n")
	var logs bytes.Buffer
	a := newTestAuthenticator(t, testOptions(path), metrics.NewSet(), slog.New(slog.NewTextHandler(&logs, nil)))
	client, now := netip.MustParseAddr("192.0.2.1"), time.Now()

	// alice: the same password, hashed anew (argon2id); bob: gone;
	// carol: as she was; dave: new.
	if err := os.WriteFile(path, []byte("alice:"+testdeps.Argon2idSecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\ndave:"+testdeps.Bcrypt2ySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, ok := a.Reload()
	slices.Sort(changed)
	if !ok || !slices.Equal(changed, []string{"alice", "bob"}) {
		t.Fatalf("Reload: %q, %v; want alice and bob, true", changed, ok)
	}
	if o, _ := a.Check(client, []byte("bob"), []byte("secret"), now); o != UnknownUser {
		t.Errorf("bob after the reload removed him: %s", o.Reason())
	}
	if o, _ := a.Check(client, []byte("dave"), []byte("secret"), now); o != OK {
		t.Errorf("dave after the reload added him: %s", o.Reason())
	}

	if err := os.WriteFile(path, []byte("dave:$apr1$Qm5ySfvx$rJQ2X8ZzMmY3vP3oWlF0Q.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, ok := a.Reload(); ok || changed != nil {
		t.Errorf("Reload of a bad file: %q, %v; want nothing, false", changed, ok)
	}
	if !strings.Contains(logs.String(), `msg="users file not reloaded; the previous one stays in force"`) || !strings.Contains(logs.String(), "line 1: MD5 hashes") {
		t.Errorf("the log does not say why the reload failed:\n%s", logs.String())
	}
	if o, _ := a.Check(client, []byte("alice"), []byte("secret"), now); o != OK {
		t.Errorf("alice with the previous file in force: %s", o.Reason())
	}
}

// A login the credential cache answers, and the claim that follows it,
// allocate nothing.
func TestCheckAndClaimAllocateNothing(t *testing.T) {
	a := newTestAuthenticator(t, testOptions(testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+":192.0.2.0/24\n")), metrics.NewSet(), discardLog())
	client, ip := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.7")
	alice, password := []byte("alice"), []byte("secret")
	if o, _ := a.Check(client, alice, password, time.Now()); o != OK { // fills the cache
		t.Fatalf("alice: %s", o.Reason())
	}
	testdeps.WantAllocs(t, "a cached login and its claim", 0, func() {
		if o, _ := a.Check(client, alice, password, time.Now()); o != OK {
			t.Fatalf("alice: %s", o.Reason())
		}
		if c := a.Claim(alice, ip); c != ClaimListed {
			t.Fatalf("alice claiming %s: %d", ip, c)
		}
	})
}
