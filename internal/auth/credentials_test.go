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
	changed, _, ok := a.Reload()
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
	if changed, narrowed, ok := a.Reload(); ok || changed != nil || narrowed != nil {
		t.Errorf("Reload of a bad file: %q, %v, %v; want nothing, false", changed, narrowed, ok)
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

// Reload names the users it kept whose ips it narrowed, with the ips they
// keep: given a list, or one that no longer covers the one before; not
// those whose list it left, widened or removed, nor those it changed.
func TestReloadNamesNarrowedUsers(t *testing.T) {
	line := func(name, ips string) string { return name + ":" + testdeps.Bcrypt2ySecret + ips + "\n" }
	path := testdeps.WriteUsersFile(t, line("alice", ":192.0.2.1,192.0.2.2")+line("bob", ":192.0.2.0/25")+line("carol", "")+
		line("dave", ":192.0.2.5")+line("erin", ":192.0.2.6")+line("frank", ":192.0.2.7"))
	a := newTestAuthenticator(t, testOptions(path), metrics.NewSet(), slog.New(slog.DiscardHandler))
	// alice narrowed; bob widened; carol given a list; dave left; erin's
	// list removed; frank's password changed and his list narrowed.
	if err := os.WriteFile(path, []byte(line("alice", ":192.0.2.1")+line("bob", ":192.0.2.0/24")+line("carol", ":192.0.2.9")+
		line("dave", ":192.0.2.5")+line("erin", "")+"frank:"+testdeps.Argon2idSecret+":192.0.2.70\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, narrowed, ok := a.Reload()
	slices.SortFunc(narrowed, func(x, y Narrowed) int { return strings.Compare(x.Username, y.Username) })
	want := []Narrowed{{"alice", []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}, {"carol", []netip.Prefix{netip.MustParsePrefix("192.0.2.9/32")}}}
	if !ok || !slices.Equal(changed, []string{"frank"}) || !slices.EqualFunc(narrowed, want, func(x, y Narrowed) bool { return x.Username == y.Username && slices.Equal(x.IPs, y.IPs) }) {
		t.Errorf("Reload: %q, %v, %v; want frank changed, alice and carol narrowed: %v", changed, narrowed, ok, want)
	}
}
