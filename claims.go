package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"northd/internal/wire"
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

// claimVerdict is what the users file says of a user claiming an ip.
type claimVerdict uint8

const (
	claimOpen    claimVerdict = iota // no list: any ip no other username holds
	claimListed                      // on the user's list: the ip is the user's, whoever holds it
	claimRefused                     // off the user's list
)

// claim says whether username may claim ip, by the users file in force.
func (a *authenticator) claim(username []byte, ip netip.Addr) claimVerdict {
	list, ok := a.users.Load().table.claims[string(username)]
	switch {
	case !ok:
		return claimOpen
	case list.allows(ip):
		return claimListed
	}
	return claimRefused
}

// claimAnswer is a refused claim, answered with its status and body.
type claimAnswer uint8

const (
	claimRefusedAnswer claimAnswer = iota // 403: the ip is off the user's list
	ipHeldAnswer                          // 409: another username holds the ip's live token
	claimAnswerCount
)

// claimAnswerReasons label them in northd_login_failures_total.
var claimAnswerReasons = [claimAnswerCount]string{"ip_not_allowed", "ip_held_by_another_user"}

var claimAnswers = [claimAnswerCount]struct {
	status int
	body   []byte
}{
	{403, wire.AppendFailureBody(nil, 5, true, "this username may not log in for that ip: the users file lists the addresses it may claim; send one of them as ip, or ask the operator to add this one")},
	{409, wire.AppendFailureBody(nil, 6, true, "another username holds a live token for that ip; send your own north server's ip, or wait until that token is logged out or expires")},
}

// refuseClaim answers a login whose credentials were right but whose ip
// it may not claim.
func (s *subsystem) refuseClaim(ctx *fasthttp.RequestCtx, a claimAnswer) {
	s.metrics.claimRefusals[a].Inc()
	ctx.SetStatusCode(claimAnswers[a].status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(claimAnswers[a].body)
}
