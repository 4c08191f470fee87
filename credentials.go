package main

import (
	"bytes"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/config"
	"northd/internal/wire"
)

// authenticator checks logins against a users file (-users). Without one
// northd is in open mode, as the seed was: any non-empty username and
// password log in, and no authenticator exists.
type authenticator struct {
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

func newAuthenticator(cfg config.Config, set *metrics.Set, log *slog.Logger) (*authenticator, error) {
	a := &authenticator{
		path: cfg.Users,

		limits:         newFailureLimits(cfg.MaxLoginFailures, cfg.MaxUserLoginFailures, cfg.LoginFailureWindow, cfg.IPv6Prefix),
		userKey:        maphash.MakeSeed(),
		log:            log,
		cacheHits:      set.NewCounter(`northd_auth_cache_hits_total`),
		cacheMisses:    set.NewCounter(`northd_auth_cache_misses_total`),
		hashDuration:   set.NewPrometheusHistogramExt(`northd_password_hash_duration_seconds`, hashBucketsSeconds),
		hashRejections: set.NewCounter(`northd_password_hash_rejections_total`),
		cacheTTL:       cfg.AuthCacheTTL,
	}
	if err := a.load(); err != nil {
		return nil, config.Usagef("%v", err)
	}
	var err error
	if a.hashing, err = startPasswordChecker(set, log, a.hashDuration); err != nil {
		return nil, err
	}
	set.NewGauge(`northd_users`, func() float64 { return float64(len(a.users.Load().table.byName)) })
	set.NewGauge(`northd_auth_cache_entries`, func() float64 { return float64(a.users.Load().cache.size()) })
	return a, nil
}

// load reads the users file and, when it is sound, puts it in force with
// an empty cache.
func (a *authenticator) load() error {
	table, warnings, err := loadUsers(a.path)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		a.log.Warn(w)
	}
	a.users.Store(&loadedUsers{table: table, cache: newCredentialCache(int64(a.cacheTTL))})
	a.log.Info("users file loaded", "path", a.path, "users", len(table.byName))
	return nil
}

// reload is SIGHUP's: a users file that does not load leaves the one in
// force as it is.
func (a *authenticator) reload() bool {
	if err := a.load(); err != nil {
		a.log.Error("users file not reloaded; the previous one stays in force", "err", err)
		return false
	}
	return true
}

// authOutcome is what checking one login's credentials found.
type authOutcome uint8

const (
	authOK authOutcome = iota
	authWrongPassword
	authUnknownUser
	authAddrLimited // too many failures from the client address
	authUserLimited // too many failures for the username
	authHashBusy    // the queue of password checks is full
	authCheckerDown // the password checker is restarting, or northd is stopping
	authOutcomeCount
)

// authOutcomeReasons label refused logins in metrics.
var authOutcomeReasons = [authOutcomeCount]string{"ok", "wrong_password", "unknown_user", "rate_limited_address", "rate_limited_username", "hash_queue_full", "password_checker_down"}

// check checks username and password (the raw, still escaped, JSON string
// from the body) for a login from client at now. For the limited outcomes
// it also says how long to wait.
func (a *authenticator) check(client netip.Addr, username, rawPassword []byte, now time.Time) (authOutcome, time.Duration) {
	if wait, limited := a.limits.byAddr.blocked(a.limits.addrKey(client), now); limited {
		return authAddrLimited, wait
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
		return authOK, 0
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
		return authAddrLimited, wait
	}
	userFailure, wait, ok := a.limits.byUser.reserve(userKey, now)
	if !ok {
		a.limits.byAddr.settle(addrKey, addrFailure, false, now)
		return authUserLimited, wait
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
		return authHashBusy, time.Second
	case verdictDown:
		return authCheckerDown, time.Second
	}
	if match && known {
		users.cache.add(username, &digest, now.UnixNano())
		return authOK, 0
	}
	if !known {
		return authUnknownUser, 0
	}
	return authWrongPassword, 0
}
