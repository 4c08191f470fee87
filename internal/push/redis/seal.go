package redis

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"northd/internal/push"
)

// SecretKeys seal the webhook secrets a Store writes to Redis, with
// AES-256-GCM, and open those it reads: whoever can read Redis cannot sign
// webhooks to north servers without a key that lives only in northd's
// configuration. The first key seals; every key opens, so that a new key
// can be put first while records sealed by the old one are still read
// (each is sealed anew by its next update).
type SecretKeys struct {
	keys []sealKey
}

type sealKey struct {
	id   string // the first 8 hex digits of the key's SHA-256: which key sealed a record
	aead cipher.AEAD
}

// ParseSecretKeys reads -push-secret-key-file: one key per line, 64 hex
// digits (32 bytes, as openssl rand -hex 32 prints), the sealing one
// first; blank lines and lines starting with # are skipped.
func ParseSecretKeys(text string) (*SecretKeys, error) {
	k := &SecretKeys{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := hex.DecodeString(line)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("line %d is not a key of 64 hex digits (openssl rand -hex 32 makes one)", n+1)
		}
		block, _ := aes.NewCipher(raw) // 32 bytes: AES-256, no error
		aead, _ := cipher.NewGCM(block)
		sum := sha256.Sum256(raw)
		k.keys = append(k.keys, sealKey{id: hex.EncodeToString(sum[:4]), aead: aead})
	}
	if len(k.keys) == 0 {
		return nil, errors.New("it holds no key: put one per line (openssl rand -hex 32 makes one)")
	}
	return k, nil
}

// stored is a record as Redis keeps it: with its secrets sealed by the key
// Sealed names, or in clear when Sealed is empty (no -push-secret-key-file,
// or a record written before there was one).
type stored struct {
	push.Record
	Sealed string `json:"sealed,omitempty"`
}

// seal is r to store, its secrets sealed by the first key. The record's id
// is the sealed secrets' additional data: a sealed secret copied into
// another subscription does not open.
func (k *SecretKeys) seal(r *push.Record) stored {
	s := stored{Record: *r}
	if k == nil {
		return s
	}
	key := k.keys[0]
	s.Sealed = key.id
	s.Secrets = make([]push.Secret, len(r.Secrets))
	for i, sec := range r.Secrets {
		nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(sec.Key)+key.aead.Overhead())
		rand.Read(nonce)
		s.Secrets[i] = push.Secret{Key: key.aead.Seal(nonce, nonce, sec.Key, []byte(r.ID)), Until: sec.Until}
	}
	return s
}

// open is the record s holds, its secrets opened.
func (k *SecretKeys) open(s *stored) (*push.Record, error) {
	r := &s.Record
	if s.Sealed == "" {
		return r, nil
	}
	var key *sealKey
	if k != nil {
		for i := range k.keys {
			if k.keys[i].id == s.Sealed {
				key = &k.keys[i]
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("webhook subscription %s's secrets are sealed by key %s, which -push-secret-key-file does not hold: give every instance the same keys", r.ID, s.Sealed)
	}
	for i, sec := range r.Secrets {
		n := key.aead.NonceSize()
		if len(sec.Key) < n {
			return nil, fmt.Errorf("webhook subscription %s: a sealed secret is too short", r.ID)
		}
		plain, err := key.aead.Open(nil, sec.Key[:n], sec.Key[n:], []byte(r.ID))
		if err != nil {
			return nil, fmt.Errorf("webhook subscription %s: a secret sealed by key %s does not open: %v", r.ID, s.Sealed, err)
		}
		r.Secrets[i].Key = plain
	}
	return r, nil
}
