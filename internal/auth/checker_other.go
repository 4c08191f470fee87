//go:build unix && !linux

package auth

import (
	"os"

	"golang.org/x/sys/unix"
)

// checkerExecutable is the program northd starts as its password checker:
// this very binary.
func checkerExecutable() (string, error) { return os.Executable() }

// lowerPriority puts this process at nice 19, the lowest priority these
// systems offer to an unprivileged process (they set it for the whole
// process).
func lowerPriority() error { return unix.Setpriority(unix.PRIO_PROCESS, 0, 19) }
