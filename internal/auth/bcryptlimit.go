package auth

import "unicode/utf8"

// bcryptMaxPasswordLen is the longest password bcrypt checks whole. bcrypt
// keys on the password and a terminating NUL, cut at 72 bytes: a password
// of 72 bytes or more hashes as every other one that begins with the same
// 72 bytes, so "72 A's and a secret" would log in with any ending, or with
// none. Such passwords are refused for bcrypt users (argon2id has no such
// limit), where htpasswd and x/crypto's CompareHashAndPassword take them
// silently.
const bcryptMaxPasswordLen = 71

// bcryptCannotCheck reports whether password is too long for h to check.
func (h *passwordHash) bcryptCannotCheck(password []byte) bool {
	return h.bcrypt != nil && len(password) > bcryptMaxPasswordLen
}

// warnBcryptTooLong logs, once per user and load of the users file, that
// a password was refused for being too long for bcrypt. The set is bounded
// by the users file: only known users get here.
func (a *Authenticator) warnBcryptTooLong(users *loadedUsers, username []byte) {
	if _, seen := users.warnedTooLong.LoadOrStore(string(username), struct{}{}); seen {
		return
	}
	name := string(username)
	if !utf8.ValidString(name) {
		name = "(not UTF-8)"
	}
	a.log.Warn("refused a bcrypt user's password of 72 bytes or more: bcrypt checks only the first 72 bytes, so it cannot tell such a password from others that begin alike; give the user an argon2id hash (northd hash-password)", "user", name)
}
