package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The argon2id parameters `northd hash-password` uses (OWASP's minimum):
// 19 MiB, 2 passes, 1 lane, a 16-byte salt and a 32-byte key.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// runWriteUsers is `loadtest write-users`: it writes the users file of the
// known north servers (north.go) for northd's -users.
func runWriteUsers(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest write-users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 20, "known north servers: north-1 … north-N")
	hash := fs.String("hash", "argon2id", "argon2id (as `northd hash-password` makes it: what a failed login costs northd in production) or bcrypt:COST (4 to 31; bcrypt:4 is the cheapest hash northd takes)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadtest write-users [-n N] [-hash argon2id|bcrypt:COST] FILE\n\n"+
			"Writes the users file of the known north servers of -scenario auth-storm and\n"+
			"verify (north-K, password loadtest-secret-K) for northd -users FILE.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *n <= 0 || *n > maxNorthServers {
		fmt.Fprintf(stderr, "loadtest write-users: -n must be 1 to %d\n", maxNorthServers)
		return 2
	}
	hasher, err := parseHasher(*hash)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest write-users:", err)
		return 2
	}
	text, err := usersFile(*n, hasher)
	if err == nil {
		// 0600: northd warns about a users file others can read.
		err = os.WriteFile(fs.Arg(0), []byte(text), 0o600)
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest write-users:", err)
		return 1
	}
	fmt.Fprintf(stdout, "loadtest write-users: %d users (%s) in %s\n", *n, *hash, fs.Arg(0))
	return 0
}

// parseHasher reads -hash.
func parseHasher(spec string) (func(password string) (string, error), error) {
	if spec == "argon2id" {
		return argon2idHash, nil
	}
	if c, ok := strings.CutPrefix(spec, "bcrypt:"); ok {
		cost, err := strconv.Atoi(c)
		if err == nil && cost >= bcrypt.MinCost && cost <= bcrypt.MaxCost {
			return func(password string) (string, error) {
				h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
				return string(h), err
			}, nil
		}
	}
	return nil, fmt.Errorf("-hash %q: want argon2id or bcrypt:COST with COST from %d to %d", spec, bcrypt.MinCost, bcrypt.MaxCost)
}

// argon2idHash is the PHC string northd hash-password writes.
func argon2idHash(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// usersFile is the users file of known servers 0 … n-1, hashed on every
// CPU at once (argon2id takes tens of milliseconds a password).
func usersFile(n int, hash func(string) (string, error)) (string, error) {
	lines := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for k := range next {
				s := knownServer(k)
				h, err := hash(s.password)
				lines[k], errs[k] = s.username+":"+h, err
			}
		})
	}
	for k := range n {
		next <- k
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return "# the known north servers of loadtest's auth-storm and verify scenarios (loadtest write-users)\n" +
		strings.Join(lines, "\n") + "\n", nil
}
