//go:build !linux

package main

import "time"

type preciseSleeper struct{}

func newPreciseSleeper() *preciseSleeper { return nil }

func (s *preciseSleeper) sleep(d time.Duration) { time.Sleep(d) }

func (s *preciseSleeper) close() {}
