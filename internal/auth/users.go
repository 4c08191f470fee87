package auth

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"northd/internal/wire"
)

// A users file is htpasswd's format: one "username:hash" per line (and
// an optional third field, the ips the user may claim: claims.go), with
// blank lines and lines starting with # ignored. Only slow, salted hashes
// are accepted: bcrypt (what htpasswd -B writes) and argon2id in the PHC
// string form (what northd hash-password writes).

// passwordHash is one user's stored hash, parsed once when the file is
// loaded.
type passwordHash struct {
	bcrypt []byte // the whole $2b$… string, for bcrypt.CompareHashAndPassword

	// argon2id, when bcrypt is nil
	argonTime, argonMemory uint32
	argonThreads           uint8
	salt, key              []byte
}

// matches reports whether password hashes to h. It takes tens of
// milliseconds by design, so only the password checker's child runs it.
func (h *passwordHash) matches(password []byte) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, password) == nil
	}
	got := argon2.IDKey(password, h.salt, h.argonTime, h.argonMemory, h.argonThreads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// sameAs reports whether h and o are one hash: the same password, salt
// and cost.
func (h *passwordHash) sameAs(o *passwordHash) bool {
	return bytes.Equal(h.bcrypt, o.bcrypt) && h.argonTime == o.argonTime && h.argonMemory == o.argonMemory &&
		h.argonThreads == o.argonThreads && bytes.Equal(h.salt, o.salt) && bytes.Equal(h.key, o.key)
}

// sameCostDummy returns a hash of a random password with h's algorithm and
// cost (see costliestHashes.dummy).
func (h *passwordHash) sameCostDummy() (*passwordHash, error) {
	secret := make([]byte, 32)
	crand.Read(secret)
	if h.bcrypt != nil {
		cost, err := bcrypt.Cost(h.bcrypt)
		if err != nil {
			return nil, err
		}
		b, err := bcrypt.GenerateFromPassword(secret, cost)
		if err != nil {
			return nil, err
		}
		return &passwordHash{bcrypt: b}, nil
	}
	d := *h
	d.salt = make([]byte, len(h.salt))
	crand.Read(d.salt)
	d.key = argon2.IDKey(secret, d.salt, d.argonTime, d.argonMemory, d.argonThreads, uint32(len(h.key)))
	return &d, nil
}

// Bounds on argon2id parameters, so that a mistyped users file cannot make
// one login take minutes or gigabytes.
const (
	argonMaxMemoryKiB = 1 << 20 // 1 GiB
	argonMaxTime      = 64
	argonMinKeyLen    = 16
	argonMinSaltLen   = 8
)

// makeHashHint is the end of every refusal of a hash: how to make one that
// northd accepts.
const makeHashHint = "make one with `northd hash-password` (argon2id) or `htpasswd -nB USER` (bcrypt)"

// parsePasswordHash parses the hash part of a users-file line. Its errors
// say why the hash is refused and how to make a good one.
func parsePasswordHash(s string) (*passwordHash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil || len(s) != 60 {
			return nil, fmt.Errorf("malformed bcrypt hash; %s", makeHashHint)
		}
		return &passwordHash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, fmt.Errorf("argon2i and argon2d are not accepted, only argon2id; %s", makeHashHint)
	case strings.HasPrefix(s, "$apr1$"), strings.HasPrefix(s, "$1$"):
		return nil, fmt.Errorf("MD5 hashes are too fast to resist guessing; %s", makeHashHint)
	case strings.HasPrefix(s, "{SHA}"):
		return nil, fmt.Errorf("SHA-1 hashes are unsalted and too fast to resist guessing; %s", makeHashHint)
	case strings.HasPrefix(s, "$5$"), strings.HasPrefix(s, "$6$"):
		return nil, fmt.Errorf("SHA-crypt hashes are not accepted; %s", makeHashHint)
	case strings.HasPrefix(s, "$"):
		return nil, fmt.Errorf("unknown hash format; %s", makeHashHint)
	case len(s) == 13:
		return nil, fmt.Errorf("DES crypt hashes are too weak; %s", makeHashHint)
	}
	return nil, fmt.Errorf("not a password hash (a plain-text password?); %s", makeHashHint)
}

// parseArgon2id parses $argon2id$v=19$m=M,t=T,p=P$SALT$KEY, with SALT and
// KEY in unpadded standard base64, as the reference implementation and
// northd hash-password write it.
func parseArgon2id(s string) (*passwordHash, error) {
	bad := func(why string) error {
		return fmt.Errorf("malformed argon2id hash (%s); %s", why, makeHashHint)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, bad("want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != "v=19" {
		return nil, bad("want version v=19")
	}
	var m, t, p uint64
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, bad("want m=…,t=…,p=…")
	}
	for i, dst := range []*uint64{&m, &t, &p} {
		name, val, ok := strings.Cut(params[i], "=")
		if !ok || name != "mtp"[i:i+1] {
			return nil, bad("want m=…,t=…,p=… in that order")
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 {
			return nil, bad(name + " must be a positive number")
		}
		*dst = n
	}
	switch {
	case p > 255:
		return nil, bad("p must be at most 255")
	case m < 8*p:
		return nil, bad("m must be at least 8×p KiB")
	case m > argonMaxMemoryKiB:
		return nil, bad("m must be at most 1048576 KiB")
	case t > argonMaxTime:
		return nil, bad("t must be at most 64")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < argonMinSaltLen {
		return nil, bad("salt must be at least 8 bytes of unpadded base64")
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < argonMinKeyLen {
		return nil, bad("hash must be at least 16 bytes of unpadded base64")
	}
	return &passwordHash{argonTime: uint32(t), argonMemory: uint32(m), argonThreads: uint8(p), salt: salt, key: key}, nil
}

// userTable is one loaded users file. It is never changed once loaded; a
// reload builds a new one.
type userTable struct {
	byName map[string]*passwordHash
	// claims holds the users whose line has a third field: the ips they
	// may claim (claims.go).
	claims map[string]claimList
	// dummy costs what the costliest user costs; see costliestHashes.
	dummy *passwordHash
}

// lookup returns the user's hash, or the dummy for an unknown user, and
// whether the user exists.
func (u *userTable) lookup(username []byte) (*passwordHash, bool) {
	if h, ok := u.byName[string(username)]; ok {
		return h, true
	}
	return u.dummy, false
}

// usersFileError names the file and line of a problem, so the operator
// can go straight to it.
type usersFileError struct {
	path string
	line int
	msg  string
}

func (e *usersFileError) Error() string {
	if e.line == 0 {
		return fmt.Sprintf("users file %s: %s", e.path, e.msg)
	}
	return fmt.Sprintf("users file %s line %d: %s", e.path, e.line, e.msg)
}

// maxUsersFileSize bounds what is read into memory.
const maxUsersFileSize = 64 << 20

// loadUsers reads and checks a users file. The warnings are for the log:
// a file others can read, weak but accepted parameters.
func loadUsers(path string) (table *userTable, warnings []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &usersFileError{path: path, msg: fmt.Sprintf("cannot open it: %v", err)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o004 != 0 {
		warnings = append(warnings, fmt.Sprintf("users file %s is readable by every user of this machine; chmod o-r it", path))
	}
	table = &userTable{byName: make(map[string]*passwordHash)}
	firstLine := make(map[string]int)
	var costliest costliestHashes
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	read, line := 0, 0
	for sc.Scan() {
		line++
		read += len(sc.Bytes()) + 1
		if read > maxUsersFileSize {
			return nil, nil, &usersFileError{path: path, line: line, msg: "the file is larger than 64 MiB"}
		}
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 {
			// A byte order mark, as some Windows editors write.
			text = strings.TrimPrefix(text, byteOrderMark)
		}
		if trimmed := strings.TrimSpace(text); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, hash, ok := strings.Cut(text, ":")
		hash, claimField, hasClaims := strings.Cut(hash, ":")
		switch {
		case !ok:
			return nil, nil, &usersFileError{path: path, line: line, msg: "want username:hash"}
		case name == "":
			return nil, nil, &usersFileError{path: path, line: line, msg: "the username is empty"}
		case strings.TrimFunc(name, isSpaceOrMark) != name:
			return nil, nil, &usersFileError{path: path, line: line, msg: fmt.Sprintf("the username %q starts or ends with white space, which no login would send; remove it", name)}
		case len(name) > wire.MaxUsernameLen:
			return nil, nil, &usersFileError{path: path, line: line, msg: "the username is longer than 256 bytes"}
		case firstLine[name] != 0:
			return nil, nil, &usersFileError{path: path, line: line, msg: fmt.Sprintf("user %q is already on line %d", name, firstLine[name])}
		}
		h, err := parsePasswordHash(hash)
		if err != nil {
			return nil, nil, &usersFileError{path: path, line: line, msg: err.Error()}
		}
		if w := weakParameters(h); w != "" {
			warnings = append(warnings, fmt.Sprintf("users file %s line %d: %s", path, line, w))
		}
		if hasClaims {
			list, err := parseClaimList(claimField)
			if err != nil {
				return nil, nil, &usersFileError{path: path, line: line, msg: err.Error()}
			}
			if table.claims == nil {
				table.claims = make(map[string]claimList)
			}
			table.claims[name] = list
		}
		firstLine[name] = line
		table.byName[name] = h
		costliest.add(h)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = errors.New("a line is longer than 64 KiB")
		}
		return nil, nil, &usersFileError{path: path, line: line + 1, msg: err.Error()}
	}
	if len(table.byName) == 0 {
		return nil, nil, &usersFileError{path: path, msg: "it has no users; add username:hash lines (" + makeHashHint + ")"}
	}
	if table.dummy, err = costliest.dummy(timeCheck); err != nil {
		return nil, nil, &usersFileError{path: path, msg: err.Error()}
	}
	return table, warnings, nil
}

const byteOrderMark = "\uFEFF"

// isSpaceOrMark is white space, and the byte order mark (a zero-width
// no-break space) anywhere but at the start of the file.
func isSpaceOrMark(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' }

// weakParameters says what is weak about an accepted hash, or "".
func weakParameters(h *passwordHash) string {
	if h.bcrypt != nil {
		if cost, _ := bcrypt.Cost(h.bcrypt); cost < bcrypt.DefaultCost {
			return fmt.Sprintf("bcrypt cost %d is below %d; consider htpasswd -nB -C 12 USER", cost, bcrypt.DefaultCost)
		}
		return ""
	}
	if h.argonMemory < argonOWASPMemoryKiB || h.argonTime < argonOWASPTime {
		return fmt.Sprintf("argon2id m=%d,t=%d is below OWASP's m=%d,t=%d; consider northd hash-password", h.argonMemory, h.argonTime, argonOWASPMemoryKiB, argonOWASPTime)
	}
	return ""
}
