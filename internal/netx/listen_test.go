package netx

import (
	"net"
	"testing"

	"northd/internal/testdeps"
)

// An address in use is refused with what to do; ListenAll then gives back
// the addresses it had taken.
func TestListenAllTakesEveryAddressOrNone(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	freeAddr := testdeps.FreeAddr(t)

	lns, err := ListenAll([]string{freeAddr, busy.Addr().String()}, false)
	want := "cannot listen on " + busy.Addr().String() + ": the address is already in use (another northd? pick another with -listen)"
	if err == nil || err.Error() != want || lns != nil {
		t.Fatalf("ListenAll: %v, %v; want %q", lns, err, want)
	}
	again, err := Listen(freeAddr, false)
	if err != nil {
		t.Fatalf("the address ListenAll took first is still taken: %v", err)
	}
	again.Close()
}

// With reusePort, two listeners share one address.
func TestListenReusePortSharesTheAddress(t *testing.T) {
	first, err := Listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := Listen(first.Addr().String(), true)
	if err != nil {
		t.Fatalf("a second listener with reusePort: %v", err)
	}
	second.Close()
}
