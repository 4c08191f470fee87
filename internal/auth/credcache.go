package auth

import (
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"hash/maphash"
	"sync"
)

// credentialCache remembers which (username, password) pairs were verified
// recently, so that a north server logging in again costs a keyed digest
// (about a microsecond) instead of a password hash (tens of milliseconds).
// It is the idea of Kubernetes' token cache, applied to passwords.
//
// It never holds a password, nor an unkeyed hash of one: an entry is the
// HMAC-SHA256 of the pair under a key drawn at random for this cache, and
// the key never leaves the process. A users file loaded anew comes with a
// new, empty cache, so a changed password stops matching at once.
type credentialCache struct {
	ttl    int64 // nanoseconds
	seed   maphash.Seed
	macs   sync.Pool // *credentialMAC
	shards [credentialCacheShards]credentialShard
}

const (
	// credentialCacheShards spreads the cache over locks, so that
	// logins on many cores do not queue on one.
	credentialCacheShards = 64
	// credentialCacheMax bounds the entries: one per user at most, and
	// never more than this.
	credentialCacheMax = 1 << 16
)

type credentialShard struct {
	mu     sync.RWMutex
	byUser map[string]cachedCredential
	_      [64]byte // keeps neighbouring shards' locks off one cache line
}

type cachedCredential struct {
	mac     credentialDigest
	expires int64 // unix nanoseconds
}

type credentialDigest [sha256.Size]byte

// credentialMAC is a reusable HMAC state with room for its output.
type credentialMAC struct {
	h   hash.Hash
	sum credentialDigest
	n   [2]byte
}

func newCredentialCache(ttlNanos int64) *credentialCache {
	c := &credentialCache{ttl: ttlNanos, seed: maphash.MakeSeed()}
	key := make([]byte, 32)
	crand.Read(key)
	c.macs.New = func() any { return &credentialMAC{h: hmac.New(sha256.New, key)} }
	for i := range c.shards {
		c.shards[i].byUser = make(map[string]cachedCredential)
	}
	return c
}

// zeroBlock is written after the password so that, when the HMAC state
// goes back to its pool, the hash's buffer of a partial block holds these
// zeros and no byte of the password: a whole block of input passes every
// earlier byte through the compression function.
var zeroBlock [sha256.BlockSize]byte

// digest returns the keyed digest of (username, password).
func (c *credentialCache) digest(username, password []byte) credentialDigest {
	m := c.macs.Get().(*credentialMAC)
	m.h.Reset()
	// The username's length first, so that no two pairs share an input.
	binary.BigEndian.PutUint16(m.n[:], uint16(len(username)))
	m.h.Write(m.n[:])
	m.h.Write(username)
	m.h.Write(password)
	m.h.Write(zeroBlock[:])
	m.h.Sum(m.sum[:0])
	d := m.sum
	c.macs.Put(m)
	return d
}

func (c *credentialCache) shard(username []byte) *credentialShard {
	return &c.shards[maphash.Bytes(c.seed, username)%credentialCacheShards]
}

// verified reports whether username's cached digest is d and has not
// expired at now (unix nanoseconds).
func (c *credentialCache) verified(username []byte, d *credentialDigest, now int64) bool {
	sh := c.shard(username)
	sh.mu.RLock()
	e, ok := sh.byUser[string(username)]
	sh.mu.RUnlock()
	return ok && now < e.expires && subtle.ConstantTimeCompare(e.mac[:], d[:]) == 1
}

// add remembers that username's password, digested as d, was verified at
// now. At the bound it makes room by forgetting an arbitrary entry.
func (c *credentialCache) add(username []byte, d *credentialDigest, now int64) {
	sh := c.shard(username)
	sh.mu.Lock()
	if _, ok := sh.byUser[string(username)]; !ok && len(sh.byUser) >= credentialCacheMax/credentialCacheShards {
		for k := range sh.byUser {
			delete(sh.byUser, k)
			break
		}
	}
	sh.byUser[string(username)] = cachedCredential{mac: *d, expires: now + c.ttl}
	sh.mu.Unlock()
}

// size reports how many entries the cache holds.
func (c *credentialCache) size() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.byUser)
		sh.mu.RUnlock()
	}
	return n
}
