package auth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// CheckPasswordsCommand is the hidden subcommand northd starts itself
// with: the password checker (checker.go). The checker is the running
// program itself, so a program that calls New must call RunCheckPasswords
// when its first argument is CheckPasswordsCommand (northd's run does, and
// so do the TestMains of test binaries that start a checker).
const CheckPasswordsCommand = "check-passwords"

// maxChildPending bounds the requests the child holds at once. northd
// sends no more than its own queue allows, far fewer; this is the child's
// own bound, should the stream be garbled.
const maxChildPending = 1 << 10

// RunCheckPasswords is `northd check-passwords`, the child: it says hello,
// lowers its own priority to the lowest, and then answers every request
// from stdin on stdout, running checks on as many goroutines as it has
// processors, until stdin ends (northd closed it, or died). Run by hand
// (with arguments, or on a terminal) it returns a *UsageError.
func RunCheckPasswords(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if f, ok := stdin.(*os.File); len(args) > 0 || ok && term.IsTerminal(int(f.Fd())) {
		return usageErrorf("%s is started by northd itself when it runs with -users; it is not a command for people", CheckPasswordsCommand)
	}
	// northd ends the child (closing stdin, then killing it) once its
	// own requests are answered. A Ctrl-C in the terminal, or systemd's
	// SIGTERM to the whole unit, would otherwise end it first, and the
	// logins of a graceful drain would find no checker.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var writeMu sync.Mutex
	reply := func(id uint64, v checkVerdict) error {
		var b [checkReplyLen]byte
		writeMu.Lock()
		defer writeMu.Unlock()
		_, err := stdout.Write(appendCheckReply(b[:0], id, v))
		return err
	}
	if err := reply(0, checkProtocolVersion); err != nil {
		return fmt.Errorf("password checker: saying hello: %w", err)
	}
	// After the hello, so that a starved CPU cannot hold up northd's
	// start; before any check, so that none runs at normal priority.
	if err := lowerPriority(); err != nil {
		fmt.Fprintf(stderr, "password checker: could not lower its priority, checks compete with requests for the CPU: %v\n", err)
	}

	workers := make(chan struct{}, runtime.GOMAXPROCS(0))
	pending := make(chan struct{}, maxChildPending)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		pending <- struct{}{}
		frame, err := readCheckFrame(stdin, nil)
		if errors.Is(err, io.EOF) {
			return nil // northd is done with us
		}
		if err != nil {
			clear(frame)
			return fmt.Errorf("password checker: reading a request: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-pending }()
			defer clear(frame) // the password goes as soon as it is checked
			workers <- struct{}{}
			defer func() { <-workers }()
			id, v := checkFrame(frame)
			reply(id, v) // a failed write means northd is gone: the next read ends
		}()
	}
}

// checkFrame checks one request frame.
func checkFrame(frame []byte) (uint64, checkVerdict) {
	id, encoded, password, err := parseCheckRequest(frame)
	if err != nil {
		return id, verdictRefused
	}
	hash, err := parsePasswordHash(string(encoded))
	if err != nil {
		return id, verdictRefused
	}
	if hash.matches(password) {
		return id, verdictMatch
	}
	return id, verdictMismatch
}
