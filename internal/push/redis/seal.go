package redis

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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
// Sealed names, or in clear when Sealed is empty (no -push-secret-key-file).
// SealVersion is 2 when the whole subscription is the additional data;
// records sealed before it was (to their id alone) have none.
type stored struct {
	push.Record
	Sealed      string `json:"sealed,omitempty"`
	SealVersion int    `json:"seal_version,omitempty"`
}

// sealVersion is the additional data bound sets.
const sealVersion = 2

// bound is the sealed secrets' additional data: the subscription's id,
// url, username, ip and types, each prefixed by its length (types by
// their count), so that no two subscriptions encode alike. A sealed
// secret copied into another subscription does not open, nor one whose
// record was pointed elsewhere by whoever can write Redis. Disabled and
// the secrets' end times are left out: the first only stops deliveries,
// and the second is changed by every rotation.
func bound(r *push.Record) []byte {
	b := append([]byte(nil), "northd subscription v2"...)
	field := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	field(r.ID)
	field(r.URL)
	field(r.Username)
	field(r.IP.String())
	b = binary.AppendUvarint(b, uint64(len(r.Types)))
	for _, t := range r.Types {
		field(t)
	}
	return b
}

// seal is r to store, its secrets sealed by the first key, bound to the
// whole subscription.
func (k *SecretKeys) seal(r *push.Record) stored {
	s := stored{Record: *r}
	if k == nil {
		return s
	}
	key := k.keys[0]
	s.Sealed, s.SealVersion = key.id, sealVersion
	ad := bound(r)
	s.Secrets = make([]push.Secret, len(r.Secrets))
	for i, sec := range r.Secrets {
		nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(sec.Key)+key.aead.Overhead())
		rand.Read(nonce)
		s.Secrets[i] = push.Secret{Key: key.aead.Seal(nonce, nonce, sec.Key, ad), Until: sec.Until}
	}
	return s
}

// unbound is a record northd will not read with keys, whose secrets may
// have been written, or its url changed, by anyone who can write Redis:
// Store.List says how to delete it.
type unbound struct{ id, why string }

func (e *unbound) Error() string { return "webhook subscription " + e.id + " " + e.why }

// open is the record s holds, its secrets opened. With keys, a record in
// clear is refused: anyone who can write Redis could have written it, url
// and secret, and no key would have been needed. So is a record sealed to
// its id alone, by a northd before the whole subscription was bound:
// its url may have been changed since, and nothing says whether it was.
func (k *SecretKeys) open(s *stored) (*push.Record, error) {
	r := &s.Record
	if s.Sealed == "" {
		if k != nil {
			return nil, &unbound{r.ID, "is kept in clear in Redis while -push-secret-key-file is given, so anyone who could write Redis may have written it"}
		}
		return r, nil
	}
	if s.SealVersion != sealVersion {
		return nil, &unbound{r.ID, "was sealed by an earlier northd, which bound its secrets to its id alone, so its url may have been changed in Redis"}
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
	ad := bound(r)
	for i, sec := range r.Secrets {
		n := key.aead.NonceSize()
		if len(sec.Key) < n {
			return nil, fmt.Errorf("webhook subscription %s: a sealed secret is too short", r.ID)
		}
		plain, err := key.aead.Open(nil, sec.Key[:n], sec.Key[n:], ad)
		if err != nil {
			return nil, &unbound{r.ID, "has a secret sealed by key " + s.Sealed + " that does not open: its id, url, username, ip or types were changed in Redis since it was sealed"}
		}
		r.Secrets[i].Key = plain
	}
	return r, nil
}
