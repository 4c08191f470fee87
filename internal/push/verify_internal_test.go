package push

import (
	"net/netip"
	"testing"
	"time"
)

// The table of verification rates holds at most its max north servers:
// one whose limiter is full again is forgotten to make room, and while
// none is, a new north server is told to retry rather than the table
// growing.
func TestVerifyRatesAreBounded(t *testing.T) {
	r := newVerifyRates(1.0/3600, 1, 2) // one an hour
	owner := func(n byte) Owner { return Owner{Username: "north", IP: netip.AddrFrom4([4]byte{192, 0, 2, n})} }
	now := time.Unix(1_700_000_000, 0)
	for _, c := range []struct {
		at    time.Duration
		owner byte
		want  error
		kept  int
	}{
		{0, 1, nil, 1},
		{0, 2, nil, 2},
		{0, 1, ErrTooFast, 2},
		{0, 3, ErrVerifiersBusy, 2}, // 1 and 2 are both still limited
		{2 * time.Hour, 3, nil, 1},  // 1 and 2 full again: forgotten
		{2 * time.Hour, 3, ErrTooFast, 1},
	} {
		if err := r.allow(owner(c.owner), now.Add(c.at)); err != c.want || len(r.m) != c.kept {
			t.Errorf("at +%v, north server %d: %v with %d kept, want %v with %d", c.at, c.owner, err, len(r.m), c.want, c.kept)
		}
	}
}
