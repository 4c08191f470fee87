package auth

import (
	crand "crypto/rand"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// costliestHashes keeps, of each algorithm in a users file, the costliest
// user's hash as its parameters tell: bcrypt's cost, argon2id's memory
// times passes (on fewer lanes when equal, since x/crypto runs lanes in
// parallel).
type costliestHashes struct {
	bcrypt, argon2id *passwordHash
}

func (c *costliestHashes) add(h *passwordHash) {
	if h.bcrypt != nil {
		if c.bcrypt == nil || bcryptCost(h) > bcryptCost(c.bcrypt) {
			c.bcrypt = h
		}
		return
	}
	if c.argon2id == nil || argonWork(h) > argonWork(c.argon2id) ||
		(argonWork(h) == argonWork(c.argon2id) && h.argonThreads < c.argon2id.argonThreads) {
		c.argon2id = h
	}
}

func bcryptCost(h *passwordHash) int {
	cost, _ := bcrypt.Cost(h.bcrypt) // checked when the file was parsed
	return cost
}

func argonWork(h *passwordHash) uint64 { return uint64(h.argonMemory) * uint64(h.argonTime) }

// dummy returns the hash an unknown username is checked against: one of a
// random password as costly as the costliest user's, so that an unknown
// username takes as long as the slowest known one and its time tells
// nothing. Only a clock can compare bcrypt with argon2id, so when the file
// has both, each candidate is timed with timeOf and the slower kept.
func (c *costliestHashes) dummy(timeOf func(*passwordHash) time.Duration) (*passwordHash, error) {
	var dummies []*passwordHash
	for _, h := range []*passwordHash{c.bcrypt, c.argon2id} {
		if h != nil {
			d, err := h.sameCostDummy()
			if err != nil {
				return nil, err
			}
			dummies = append(dummies, d)
		}
	}
	switch len(dummies) {
	case 0:
		return nil, nil
	case 1:
		return dummies[0], nil
	}
	if timeOf(dummies[0]) > timeOf(dummies[1]) {
		return dummies[0], nil
	}
	return dummies[1], nil
}

// timeCheck is how long checking a password against h takes on this
// machine: the least of three checks, so that a moment's contention for
// the CPU does not make a cheap hash look costly.
func timeCheck(h *passwordHash) time.Duration {
	password := make([]byte, 16)
	crand.Read(password)
	least := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		h.matches(password)
		least = min(least, time.Since(start))
	}
	return least
}
