package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleeper sleeps on a timerfd read through the Go netpoller: the
// kernel's high-resolution timer wakes it within microseconds, where
// time.Sleep on Linux can wake up to a millisecond late (the runtime waits
// on epoll with millisecond timeouts), and the goroutine holds no thread
// while it waits.
type preciseSleeper struct {
	fd int
	f  *os.File
}

func newPreciseSleeper() *preciseSleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return &preciseSleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

// sleep waits d; a nil sleeper falls back to time.Sleep.
func (s *preciseSleeper) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	if s == nil {
		time.Sleep(d)
		return
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(s.fd, 0, &spec, nil); err != nil {
		time.Sleep(d)
		return
	}
	var buf [8]byte
	if _, err := s.f.Read(buf[:]); err != nil {
		time.Sleep(d)
	}
}

func (s *preciseSleeper) close() {
	if s != nil {
		s.f.Close()
	}
}
