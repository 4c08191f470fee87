package main

import "golang.org/x/sys/unix"

// lowerThreadPriority gives the calling thread the lowest scheduling
// priority, nice 19; on Linux, priority is per thread. An error (a
// container that forbids it) leaves the priority as it was: checks then
// compete with requests as ordinary work.
func lowerThreadPriority() {
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
}
