package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"testing"

	"northd/internal/testdeps"
)

func TestCredentialCache(t *testing.T) {
	c := newCredentialCache(10e9)
	alice := []byte("alice")
	d := c.digest(alice, []byte("secret"))
	if c.verified(alice, &d, 1) {
		t.Fatal("an empty cache verified a pair")
	}
	c.add(alice, &d, 100)
	wrong := c.digest(alice, []byte("Secret"))
	other := c.digest([]byte("alicesecret"), nil) // same bytes, other split
	tests := []struct {
		name     string
		username []byte
		d        credentialDigest
		now      int64
		want     bool
	}{
		{"same pair", alice, d, 101, true},
		{"last nanosecond", alice, d, 100 + 10e9 - 1, true},
		{"expired", alice, d, 100 + 10e9, false},
		{"wrong password", alice, wrong, 101, false},
		{"other user", []byte("bob"), d, 101, false},
		{"other split of the same bytes", alice, other, 101, false},
	}
	for _, tt := range tests {
		if got := c.verified(tt.username, &tt.d, tt.now); got != tt.want {
			t.Errorf("%s: verified = %v, want %v", tt.name, got, tt.want)
		}
	}
	if c.digest(alice, []byte("secret")) != d {
		t.Error("the digest of a pair changed between calls")
	}
	if newCredentialCache(10e9).digest(alice, []byte("secret")) == d {
		t.Error("two caches share a key")
	}
}

// The cache holds at most credentialCacheMax entries, however many users
// log in.
func TestCredentialCacheIsBounded(t *testing.T) {
	c := newCredentialCache(10e9)
	var d credentialDigest
	for i := range 3 * credentialCacheMax {
		c.add([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, &d, 1)
	}
	if n := c.size(); n > credentialCacheMax || n < credentialCacheMax/2 {
		t.Fatalf("cache holds %d entries, want at most %d (and not far below)", n, credentialCacheMax)
	}
}

// The digest ends with a block of zeros so that no byte of the password
// stays in the pooled hash state's partial-block buffer. crypto/hmac's
// state cannot be inspected, so this checks the premise on SHA-256 itself,
// whose state can: after a whole block of zeros, the buffer holds none of
// the password; without it, it does.
func TestZeroBlockFlushesThePassword(t *testing.T) {
	password := []byte("Zq9#unmistakable-password")
	for _, withZeros := range []bool{false, true} {
		h := sha256.New()
		h.Write([]byte{0, 5})
		h.Write([]byte("alice"))
		h.Write(password)
		if withZeros {
			h.Write(zeroBlock[:])
		}
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if kept := bytes.Contains(state, password); kept == withZeros {
			t.Errorf("with the zero block %v: the state holds the password: %v", withZeros, kept)
		}
	}
}

func TestCredentialDigestAllocatesNothing(t *testing.T) {
	c := newCredentialCache(10e9)
	alice, pw := []byte("alice"), []byte("secret")
	d := c.digest(alice, pw)
	c.add(alice, &d, 1)
	testdeps.WantAllocs(t, "a cache lookup", 0, func() {
		d := c.digest(alice, pw)
		c.verified(alice, &d, 2)
	})
}
