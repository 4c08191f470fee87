package auth

import (
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"northd/internal/testdeps"
)

// argon2idLine is a users-file hash of password with argon2id at m KiB
// and t passes, made with x/crypto's argon2 directly.
func argon2idLine(password string, m, t uint32) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, t, m, 1, 32)
	return "$argon2id$v=19$m=" + strconv.Itoa(int(m)) + ",t=" + strconv.Itoa(int(t)) + ",p=1$" +
		base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

// An unknown username is checked against a dummy as costly as the
// costliest user in the file, not the first: here a bcrypt cost 4 user
// comes first, a light argon2id user next, and the costliest is an
// argon2id user with m=19456,t=4 (tens of milliseconds against one). The
// root's tests check that both get the same answer over HTTP.
func TestUnknownUserCheckedAgainstTheCostliestUser(t *testing.T) {
	heavy := argon2idLine("heavy secret", 19456, 4)
	users := testdeps.WriteUsersFile(t, "cheap:"+testdeps.Bcrypt2ySecret+"\nlight:"+testdeps.Argon2idSecret+"\nheavy:"+heavy+"\n")
	table, _, err := loadUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	h, known := table.lookup([]byte("nobody"))
	if known || h.bcrypt != nil || h.argonMemory != 19456 || h.argonTime != 4 || h.argonThreads != 1 || len(h.key) != 32 || len(h.salt) != 16 {
		t.Fatalf("an unknown user is checked against bcrypt %q / argon2id m=%d,t=%d,p=%d (key %d, salt %d bytes); want argon2id m=19456,t=4,p=1 (32, 16), the costliest user's",
			h.bcrypt, h.argonMemory, h.argonTime, h.argonThreads, len(h.key), len(h.salt))
	}
	if h.matches([]byte("heavy secret")) || string(h.salt) == "0123456789abcdef" {
		t.Error("the dummy is the heavy user's own hash, not one of a random password")
	}

}

// Between algorithms the slower dummy is kept, as timed; within one the
// parameters say which user is costliest.
func TestCostliestDummyChoice(t *testing.T) {
	bc4, _ := parsePasswordHash(testdeps.Bcrypt2ySecret)
	bc5, _ := parsePasswordHash(`$2y$05$vgdcp5bS5tKtwIcHpEWFDO0FgL1/SnStQ2zAcgz.Bz5t10mk6MtxO`)
	a1, _ := parsePasswordHash(testdeps.Argon2idSecret)                                                                    // m=8,t=1
	a2, _ := parsePasswordHash(`$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`) // m=16
	a3, _ := parsePasswordHash(`$argon2id$v=19$m=16,t=1,p=2$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`) // two lanes
	var c costliestHashes
	for _, h := range []*passwordHash{bc5, a1, bc4, a2, a3} {
		c.add(h)
	}
	if c.bcrypt != bc5 || c.argon2id != a2 {
		t.Fatalf("costliest bcrypt %q, argon2id m=%d,p=%d; want cost 5 and m=16,p=1", c.bcrypt.bcrypt, c.argon2id.argonMemory, c.argon2id.argonThreads)
	}
	for _, tt := range []struct {
		bcryptTime, argonTime time.Duration
		wantBcrypt            bool
	}{
		{time.Millisecond, 40 * time.Millisecond, false},
		{250 * time.Millisecond, 40 * time.Millisecond, true},
	} {
		d, err := c.dummy(func(h *passwordHash) time.Duration {
			if h.bcrypt != nil {
				return tt.bcryptTime
			}
			return tt.argonTime
		})
		if err != nil {
			t.Fatal(err)
		}
		if (d.bcrypt != nil) != tt.wantBcrypt {
			t.Errorf("bcrypt timed %v, argon2id %v: the dummy is bcrypt %v, want %v", tt.bcryptTime, tt.argonTime, d.bcrypt != nil, tt.wantBcrypt)
		}
	}
}
