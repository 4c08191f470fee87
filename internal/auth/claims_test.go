package auth

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// The users file's third field lists the addresses a user may claim:
// addresses and prefixes, IPv4 and IPv6; anything else names the line.
func TestUsersFileClaimField(t *testing.T) {
	path := testdeps.WriteUsersFile(t, testdeps.TestUsersHeader+"alice:"+testdeps.Bcrypt2ySecret+":192.0.2.0/24, 2001:db8::/48,198.51.100.7,::ffff:203.0.113.9\nbob:"+testdeps.Argon2idSecret+"\n")
	table, _, err := loadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := table.claims["bob"]; ok {
		t.Error("bob has no third field, yet a claim list")
	}
	alice := table.claims["alice"]
	for ip, want := range map[string]bool{
		"192.0.2.0": true, "192.0.2.255": true, "192.0.3.0": false, "2001:db8:0:ffff::1": true, "2001:db8:1::1": false,
		"198.51.100.7": true, "198.51.100.8": false, "203.0.113.9": true, "::ffff:192.0.2.1": true,
	} {
		if got := alice.allows(netip.MustParseAddr(ip)); got != want {
			t.Errorf("alice may claim %s: %v, want %v", ip, got, want)
		}
	}
	if h, known := table.lookup([]byte("alice")); !known || !h.matches([]byte("secret")) {
		t.Error("alice's hash did not survive the third field")
	}

	for content, want := range map[string]string{
		"alice:" + testdeps.Bcrypt2ySecret + ":\n":                    ` line 1: the third field lists an empty address; want addresses or CIDR prefixes separated by commas, such as 192.0.2.0/24,2001:db8::/48, or no third field (and its colon) at all`,
		"alice:" + testdeps.Bcrypt2ySecret + ":192.0.2.0/24,\n":       ` line 1: the third field lists an empty address;`,
		"alice:" + testdeps.Bcrypt2ySecret + ":192.0.2.0/33\n":        ` line 1: the third field holds "192.0.2.0/33", which is not an IP address or CIDR prefix; want addresses or prefixes separated by commas, such as 192.0.2.0/24,2001:db8::/48`,
		"alice:" + testdeps.Bcrypt2ySecret + ":north server in DC1\n": ` line 1: the third field holds "north server in DC1", which is not an IP address or CIDR prefix`,
		"alice:" + testdeps.Bcrypt2ySecret + ":fe80::1%eth0\n":        ` line 1: the third field holds "fe80::1%eth0", which is not an IP address or CIDR prefix`,
	} {
		path := testdeps.WriteUsersFile(t, content)
		if _, _, err := loadUsers(path); err == nil || !strings.HasPrefix(err.Error(), "users file "+path+want) {
			t.Errorf("loadUsers(%q) = %v, want users file %s%s", content, err, path, want)
		}
	}
}

// Claim answers by the users file in force: a user with a list ClaimListed
// on it and ClaimRefused off it, a user without one (or unknown)
// ClaimOpen.
func TestClaim(t *testing.T) {
	a := newTestAuthenticator(t, testOptions(testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+":192.0.2.0/24\nbob:"+testdeps.Bcrypt2ySecret+"\n")), metrics.NewSet(), discardLog())
	for _, tt := range []struct {
		user, ip string
		want     Claim
	}{
		{"alice", "192.0.2.7", ClaimListed},
		{"alice", "::ffff:192.0.2.7", ClaimListed},
		{"alice", "198.51.100.7", ClaimRefused},
		{"bob", "198.51.100.7", ClaimOpen},
		{"nobody", "198.51.100.7", ClaimOpen},
	} {
		if got := a.Claim([]byte(tt.user), netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("%s claiming %s: %d, want %d", tt.user, tt.ip, got, tt.want)
		}
	}
}
