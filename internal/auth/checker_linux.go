package auth

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// checkerExecutable is the program northd starts as its password checker:
// this very binary. /proc/self/exe is the running file even after a
// package upgrade replaced it on disk, so that the child always speaks
// its parent's protocol; os.Executable would name the new file.
func checkerExecutable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	return os.Executable()
}

// lowerPriority puts every thread of this process in SCHED_IDLE, below
// every nice level, so that the kernel runs the checks only on a CPU
// nothing else wants and preempts them at once when a request comes;
// where that is refused, at nice 19. On Linux both are set per thread:
// the threads that exist are set here (again until no new one appears),
// and those the Go runtime starts later inherit from their creator.
func lowerPriority() error {
	done := make(map[int]bool)
	for {
		tids, err := threadIDs()
		if err != nil {
			return err
		}
		fresh := false
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			fresh = true
			done[tid] = true
			err := unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
			if err != nil {
				if err := unix.Setpriority(unix.PRIO_PROCESS, tid, 19); err != nil && !errors.Is(err, unix.ESRCH) {
					return err
				}
			}
		}
		if !fresh {
			return nil
		}
	}
}

// threadIDs lists this process's threads.
func threadIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
