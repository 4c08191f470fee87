package main

import "bytes"

// A reload that removes a user or changes its password ends that user's
// live tokens, in every subsystem and with either store: whoever the
// operator locked out must not stay logged in until the tokens expire.

// endTokensOfChangedUsers ends the live tokens of the users that were in
// before and are not in after, or are with another hash.
func (srv *instance) endTokensOfChangedUsers(before, after *userTable) {
	for name, h := range before.byName {
		if a, ok := after.byName[name]; ok && a.sameAs(h) {
			continue
		}
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

// sameAs reports whether h and o are one hash: the same password, salt
// and cost.
func (h *passwordHash) sameAs(o *passwordHash) bool {
	return bytes.Equal(h.bcrypt, o.bcrypt) && h.argonTime == o.argonTime && h.argonMemory == o.argonMemory &&
		h.argonThreads == o.argonThreads && bytes.Equal(h.salt, o.salt) && bytes.Equal(h.key, o.key)
}
