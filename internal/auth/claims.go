package auth

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Who may claim an ip. A login names the north server it speaks for by its
// ip, and a user may be tied to the addresses it may claim: a third field
// in the users file, "name:hash:192.0.2.0/24,2001:db8::/48" (nginx's
// auth_basic_user_file reads the same file and ignores it). A user without
// one may claim any ip, but not one whose live token another username
// holds; a user with one may claim those ips only, and takes them over
// from whoever holds them, since the operator said they are its. In open
// mode a username proves nothing, so the latest login takes the ip.

// claimList is the addresses one user may claim.
type claimList []netip.Prefix

// parseClaimList parses the third field of a users-file line: addresses
// and CIDR prefixes, comma-separated.
func parseClaimList(field string) (claimList, error) {
	var list claimList
	for _, s := range strings.Split(field, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("the third field lists an empty address; want addresses or CIDR prefixes separated by commas, such as 192.0.2.0/24,2001:db8::/48, or no third field (and its colon) at all")
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			list = append(list, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("the third field holds %q, which is not an IP address or CIDR prefix; want addresses or prefixes separated by commas, such as 192.0.2.0/24,2001:db8::/48", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		list = append(list, p.Masked())
	}
	return list, nil
}

func (l claimList) allows(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// covers reports whether every address of o is in l.
func (l claimList) covers(o claimList) bool {
	for _, p := range o {
		if !slices.ContainsFunc(l, func(q netip.Prefix) bool { return q.Bits() <= p.Bits() && q.Contains(p.Addr()) }) {
			return false
		}
	}
	return true
}

// Claim is what the users file says of a user claiming an ip: a login
// ClaimListed takes the ip over from whoever holds it, one ClaimOpen gets
// it only if no other username holds its live token, and one ClaimRefused
// does not get it.
type Claim uint8

const (
	ClaimOpen    Claim = iota // no list: any ip no other username holds
	ClaimListed               // on the user's list: the ip is the user's, whoever holds it
	ClaimRefused              // off the user's list
)

// Claim says whether username may claim ip, by the users file in force.
// Ask it only once the password is right, so that the answer tells no
// one else which ips a user may claim. It allocates nothing.
func (a *Authenticator) Claim(username []byte, ip netip.Addr) Claim {
	list, ok := a.users.Load().table.claims[string(username)]
	switch {
	case !ok:
		return ClaimOpen
	case list.allows(ip):
		return ClaimListed
	}
	return ClaimRefused
}
