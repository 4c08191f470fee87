package testdeps

import "syscall"

// Pause stops redis-server (SIGSTOP) without closing its connections, as
// a store too busy to answer would: calls wait, then time out.
func (r *Redis) Pause() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatalf("pausing redis-server: %v", err)
	}
	r.t.Cleanup(r.Resume) // a paused server would hold up Kill's wait
}

// Resume lets a paused redis-server run on (SIGCONT); what it had read
// while paused, it then executes.
func (r *Redis) Resume() {
	if r.cmd != nil {
		r.cmd.Process.Signal(syscall.SIGCONT)
	}
}
