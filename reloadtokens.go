package main

// A reload that removes a user or changes its password ends that user's
// live tokens, in every subsystem and with either store: whoever the
// operator locked out must not stay logged in until the tokens expire.
// One that narrows the ips a user may claim ends its tokens at the others.
// Streams on an ended token close at the next heartbeat, and webhooks
// pause while their north server holds no live token.

import "northd/internal/auth"

// endTokensOfUsers ends the live tokens of users, the ones the reload
// removed or gave another hash (auth.Authenticator.Reload).
func (srv *instance) endTokensOfUsers(users []string) {
	for _, name := range users {
		for _, s := range srv.subsystems {
			n, err := s.store.EndUserTokens(srv.ctx, name)
			if err != nil {
				srv.log.Error("the reload removed a user or changed its password, but its live tokens could not be ended in the store; they verify until they expire or a later reload ends them", "subsystem", s.name, "user", name, "err", err)
				continue
			}
			if n > 0 {
				srv.log.Info("ended the live tokens of a user the reload removed or gave a new password", "subsystem", s.name, "user", name, "tokens", n)
			}
		}
	}
}

// endTokensOutsideIPs ends the live tokens the users narrowed hold at ips
// the users file no longer lets them claim (auth.Authenticator.Reload).
func (srv *instance) endTokensOutsideIPs(narrowed []auth.Narrowed) {
	for _, u := range narrowed {
		for _, s := range srv.subsystems {
			n, err := s.store.EndUserTokensOutside(srv.ctx, u.Username, u.IPs)
			if err != nil {
				srv.log.Error("the reload narrowed the ips of a user, but its live tokens at other ips could not be ended in the store; they verify until they expire or a later reload ends them", "subsystem", s.name, "user", u.Username, "err", err)
				continue
			}
			if n > 0 {
				srv.log.Info("ended the live tokens of a user at ips the reload took from it", "subsystem", s.name, "user", u.Username, "tokens", n)
			}
		}
	}
}
