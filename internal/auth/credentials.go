// Package auth is northd's -users: the users file (with the ips each user
// may claim), password checks in a child process at the lowest priority
// (northd check-passwords), the verified-credential cache, the brute-force
// limits, and northd hash-password.
//
// It knows nothing of northd's flags, routes or answers: its owner maps
// its configuration to Options, and turns an Outcome or a Claim into an
// answer and a metric of its own, so that checking credentials can
// change, and be tested, apart from the server.
package auth

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/wire"
)

// Options are what an Authenticator enforces, each from the flag named.
type Options struct {
	// UsersFile is the users file's path (-users).
	UsersFile string
	// CacheTTL is how long a verified username and password log in
	// again without a password check (-auth-cache-ttl).
	CacheTTL time.Duration
	// MaxAddrFailures is the failed logins allowed from one client per
	// FailureWindow (-max-login-failures).
	MaxAddrFailures int
	// MaxUserFailures is the failed logins allowed for one username per
	// FailureWindow, from all clients together (-max-user-login-failures).
	MaxUserFailures int
	// FailureWindow is the window of both limits (-login-failure-window).
	FailureWindow time.Duration
	// IPv6Prefix is how many leading bits of an IPv6 address name one
	// client under MaxAddrFailures (-ipv6-prefix); see netx.ClientKey.
	IPv6Prefix int
}

// UsageError is a mistake only the operator can mend: a users file
// northd refuses, hash-password given an argument or no password,
// check-passwords run by hand. northd exits 2 on it, as on a bad flag;
// retrying will not help.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// Authenticator checks logins against a users file (-users). Without one
// northd is in open mode, as the seed was: any non-empty username and
// password log in, and no Authenticator exists. It is safe for concurrent
// use.
type Authenticator struct {
	path    string
	users   atomic.Pointer[loadedUsers]
	hashing *passwordChecker
	limits  *failureLimits
	userKey maphash.Seed // names a user in limits.byUser
	log     *slog.Logger

	cacheTTL time.Duration

	cacheHits, cacheMisses *metrics.Counter
	hashDuration           *metrics.PrometheusHistogram
	hashRejections         *metrics.Counter
}

// loadedUsers is one load of the users file with its own credential cache,
// so that a reload starts with an empty cache and a verification that
// raced the reload can only fill the old one.
type loadedUsers struct {
	table *userTable
	cache *credentialCache

	warnedTooLong sync.Map // usernames warnBcryptTooLong has logged
}

// hashBucketsSeconds cover bcrypt and argon2id costs from a millisecond
// (test parameters) to seconds (a paranoid cost on a busy machine).
var hashBucketsSeconds = []float64{1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5}

// New loads o.UsersFile and starts the password checker, and returns once
// both are ready, so that a northd that cannot check passwords does not
// start. A users file it refuses is a *UsageError naming the file and the
// line. Stop ends the checker.
func New(o Options, set *metrics.Set, log *slog.Logger) (*Authenticator, error) {
	a := &Authenticator{
		path: o.UsersFile,

		limits:         newFailureLimits(o.MaxAddrFailures, o.MaxUserFailures, o.FailureWindow, o.IPv6Prefix),
		userKey:        maphash.MakeSeed(),
		log:            log,
		cacheHits:      set.NewCounter(`northd_auth_cache_hits_total`),
		cacheMisses:    set.NewCounter(`northd_auth_cache_misses_total`),
		hashDuration:   set.NewPrometheusHistogramExt(`northd_password_hash_duration_seconds`, hashBucketsSeconds),
		hashRejections: set.NewCounter(`northd_password_hash_rejections_total`),
		cacheTTL:       o.CacheTTL,
	}
	if _, err := a.load(); err != nil {
		return nil, usageErrorf("%v", err)
	}
	var err error
	if a.hashing, err = startPasswordChecker(set, log, a.hashDuration); err != nil {
		return nil, err
	}
	set.NewGauge(`northd_users`, func() float64 { return float64(len(a.users.Load().table.byName)) })
	set.NewGauge(`northd_auth_cache_entries`, func() float64 { return float64(a.users.Load().cache.size()) })
	return a, nil
}

// Stop ends the password checker and reaps its child. Checks still
// waiting, and any asked afterwards, are CheckerDown. northd calls it once
// its servers have shut down, so that no handler still waits for a check.
func (a *Authenticator) Stop() { a.hashing.stop() }

// load reads the users file and, when it is sound, puts it in force with
// an empty cache, and returns it.
func (a *Authenticator) load() (*userTable, error) {
	table, warnings, err := loadUsers(a.path)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		a.log.Warn(w)
	}
	a.users.Store(&loadedUsers{table: table, cache: newCredentialCache(int64(a.cacheTTL))})
	a.log.Info("users file loaded", "path", a.path, "users", len(table.byName))
	return table, nil
}

// Reload is SIGHUP's: it reads the users file anew and puts it in force
// with an empty cache. A users file that does not load leaves the one in
// force as it is, says why in the log, and ok is false. changed names the
// users the new file removed or gave another hash (the same password
// hashed anew included), whose live tokens the caller ends: whoever the
// operator locked out must not stay logged in until they expire.
// narrowed names the users it kept with their hash but whose ips it
// narrowed (a third field given, or one that no longer covers the one
// before), with the ips they may claim now: the caller ends their live
// tokens at other ips.
func (a *Authenticator) Reload() (changed []string, narrowed []Narrowed, ok bool) {
	before := a.users.Load().table
	after, err := a.load()
	if err != nil {
		a.log.Error("users file not reloaded; the previous one stays in force", "err", err)
		return nil, nil, false
	}
	for name, h := range before.byName {
		n, kept := after.byName[name]
		if !kept || !n.sameAs(h) {
			changed = append(changed, name)
			continue
		}
		now, listed := after.claims[name]
		if was, wasListed := before.claims[name]; listed && (!wasListed || !now.covers(was)) {
			narrowed = append(narrowed, Narrowed{Username: name, IPs: slices.Clone(now)})
		}
	}
	return changed, narrowed, true
}

// Narrowed is a user whose ips a reload narrowed, and the ips it may
// claim now.
type Narrowed struct {
	Username string
	IPs      []netip.Prefix
}

// Outcome is what checking one login's credentials found.
type Outcome uint8

// The outcomes of Check. OutcomeCount sizes arrays indexed by Outcome.
const (
	OK Outcome = iota
	WrongPassword
	UnknownUser
	AddrLimited // too many failures from the client address
	UserLimited // too many failures for the username
	HashBusy    // the queue of password checks is full
	CheckerDown // the password checker is restarting, or northd is stopping
	OutcomeCount
)

// Reason is o's label in metrics: "wrong_password", "unknown_user"…
func (o Outcome) Reason() string { return outcomeReasons[o] }

// outcomeReasons label refused logins in metrics.
var outcomeReasons = [OutcomeCount]string{"ok", "wrong_password", "unknown_user", "rate_limited_address", "rate_limited_username", "hash_queue_full", "password_checker_down"}

// Check checks username and password (the raw, still escaped, JSON string
// from the body) for a login from client at now. For the limited outcomes,
// HashBusy and CheckerDown it also says how long to wait. It allocates
// nothing when the credential cache answers, as it does for every repeat
// login.
func (a *Authenticator) Check(client netip.Addr, username, rawPassword []byte, now time.Time) (Outcome, time.Duration) {
	if wait, limited := a.limits.byAddr.blocked(a.limits.addrKey(client), now); limited {
		return AddrLimited, wait
	}
	password := rawPassword
	if bytes.IndexByte(rawPassword, '\\') >= 0 {
		// The rare escaped password is decoded into memory of its own,
		// cleared before return.
		password = wire.AppendPassword(make([]byte, 0, len(rawPassword)), rawPassword)
		defer clear(password)
	}
	users := a.users.Load()
	digest := users.cache.digest(username, password)
	if users.cache.verified(username, &digest, now.UnixNano()) {
		a.cacheHits.Inc()
		return OK, 0
	}
	a.cacheMisses.Inc()

	hash, known := users.table.lookup(username)
	// A password bcrypt cannot check whole is refused, after a check
	// against the dummy: it takes as long and answers the same bytes as
	// an unknown user's refusal, so it tells no one the user exists.
	tooLong := known && hash.bcryptCannotCheck(password)
	if tooLong {
		a.warnBcryptTooLong(users, username)
		hash = users.table.dummy
	}
	// Every username has a bucket, known or not, so that the 429 tells no
	// one which usernames exist. A failure is reserved in both buckets
	// before the check (see limiterTable.reserve) and taken only if the
	// check fails.
	addrKey, userKey := a.limits.addrKey(client), maphash.Bytes(a.userKey, username)
	addrFailure, wait, ok := a.limits.byAddr.reserve(addrKey, now)
	if !ok {
		return AddrLimited, wait
	}
	userFailure, wait, ok := a.limits.byUser.reserve(userKey, now)
	if !ok {
		a.limits.byAddr.settle(addrKey, addrFailure, false, now)
		return UserLimited, wait
	}
	// An unknown user is checked against a dummy as costly as the
	// costliest user (costliestHashes), so that its answer takes as long.
	verdict := a.hashing.check(hash, password)
	checked := verdict == verdictMatch || verdict == verdictMismatch
	match := verdict == verdictMatch && !tooLong
	failed := checked && !(match && known)
	a.limits.byAddr.settle(addrKey, addrFailure, failed, now)
	a.limits.byUser.settle(userKey, userFailure, failed, now)
	switch verdict {
	case verdictBusy:
		a.hashRejections.Inc()
		return HashBusy, time.Second
	case verdictDown:
		return CheckerDown, time.Second
	}
	if match && known {
		users.cache.add(username, &digest, now.UnixNano())
		return OK, 0
	}
	if !known {
		return UnknownUser, 0
	}
	return WrongPassword, 0
}
