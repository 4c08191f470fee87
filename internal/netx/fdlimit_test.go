package netx

import (
	"log/slog"
	"strings"
	"syscall"
	"testing"
)

// MaxConnsForDescriptors lowers a default that does not fit the process's
// descriptor limit, keeps one that does, and keeps a given one whatever
// the limit, warning when it does not fit. (The root's tests run northd
// under a limit of their choosing; this one takes the limit it has.)
func TestMaxConnsForDescriptors(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) {
		t.Skipf("no descriptor limit to fit under (%v)", err)
	}
	fits := max((int(lim.Cur)-descriptorReserve)/2, 1)
	for _, tt := range []struct {
		maxConns int
		given    bool
		want     int
		logged   string
	}{
		{fits, false, fits, ""},
		{fits, true, fits, ""},
		{fits + 1, false, fits, `level=INFO msg="lowered the default -max-conns to fit the descriptor limit"`},
		{fits + 1, true, fits + 1, `level=WARN msg="-max-conns is above what the descriptor limit leaves for connections; past it, accepts fail and are retried"`},
	} {
		var logs strings.Builder
		got := MaxConnsForDescriptors(tt.maxConns, tt.given, 2, slog.New(slog.NewTextHandler(&logs, nil)))
		if got != tt.want || !strings.Contains(logs.String(), tt.logged) || (tt.logged == "") != (logs.Len() == 0) {
			t.Errorf("MaxConnsForDescriptors(%d, given %v, 2 listeners) under %d descriptors = %d, logging %q; want %d, logging %q",
				tt.maxConns, tt.given, lim.Cur, got, logs.String(), tt.want, tt.logged)
		}
	}
}
