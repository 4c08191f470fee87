package auth

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/argon2"
	"golang.org/x/term"
)

// OWASP's Password Storage Cheat Sheet recommends argon2id with at least
// 19 MiB of memory, 2 iterations and 1 degree of parallelism; a 16-byte
// salt and a 32-byte key are the usual PHC sizes.
const (
	argonOWASPMemoryKiB = 19 * 1024
	argonOWASPTime      = 2
	argonOWASPThreads   = 1
	argonSaltLen        = 16
	argonKeyLen         = 32
)

// maxPasswordInput bounds what hash-password reads.
const maxPasswordInput = 4096

// RunHashPassword is `northd hash-password`: it reads one password from
// stdin (without echo when stdin is a terminal, asking twice) and prints
// its argon2id PHC string, ready to go after "username:" in a users file.
// Arguments, or no password, are a *UsageError.
func RunHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return usageErrorf("hash-password takes no arguments: it reads the password from standard input (echo -n pw | northd hash-password)")
	}
	var password []byte
	var err error
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		password, err = readPasswordTwice(int(f.Fd()), stderr)
	} else {
		password, err = readPasswordLine(stdin)
	}
	if err != nil {
		return err
	}
	defer clear(password)
	fmt.Fprintln(stdout, hashPassword(password))
	return nil
}

// hashPassword returns password's argon2id PHC string with OWASP's
// parameters and a fresh salt.
func hashPassword(password []byte) string {
	salt := make([]byte, argonSaltLen)
	crand.Read(salt)
	key := argon2.IDKey(password, salt, argonOWASPTime, argonOWASPMemoryKiB, argonOWASPThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonOWASPMemoryKiB, argonOWASPTime, argonOWASPThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// readPasswordLine reads the first line of r (a pipe or file): the
// password, without its line ending.
func readPasswordLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxPasswordInput+2), maxPasswordInput+2)
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the password from standard input: %w", err)
	}
	if len(line) > maxPasswordInput+1 || (len(line) == maxPasswordInput+1 && line[len(line)-1] != '\n') {
		return nil, usageErrorf("the password is longer than %d bytes", maxPasswordInput)
	}
	password := bytes.Clone(bytes.TrimRight(line, "\r\n"))
	clear(line)
	if len(password) == 0 {
		return nil, usageErrorf("no password on standard input; pipe one in (printf %%s PASSWORD | northd hash-password) or run it in a terminal")
	}
	return password, nil
}

// readPasswordTwice asks for the password on the terminal, twice, without
// echo.
func readPasswordTwice(fd int, prompt io.Writer) ([]byte, error) {
	fmt.Fprint(prompt, "Password: ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return nil, fmt.Errorf("reading the password: %w", err)
	}
	fmt.Fprint(prompt, "Again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	defer clear(second)
	switch {
	case err != nil:
		clear(first)
		return nil, fmt.Errorf("reading the password: %w", err)
	case !bytes.Equal(first, second):
		clear(first)
		return nil, usageErrorf("the two passwords differ; run northd hash-password again")
	case len(first) == 0:
		return nil, usageErrorf("the password is empty")
	}
	return first, nil
}
