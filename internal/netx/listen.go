package netx

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp/reuseport"
)

// ListenAll listens on every one of addrs, or on none: a failure closes
// the ones already taken.
func ListenAll(addrs []string, reusePort bool) ([]net.Listener, error) {
	var lns []net.Listener
	for _, addr := range addrs {
		ln, err := Listen(addr, reusePort)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Listen listens on addr over TCP, with SO_REUSEPORT when reusePort is
// set, so that several processes share the address. An address already
// in use gets a sentence saying what to do.
func Listen(addr string, reusePort bool) (net.Listener, error) {
	var ln net.Listener
	var err error
	if reusePort {
		network := "tcp4"
		if host, _, _ := net.SplitHostPort(addr); strings.Contains(host, ":") {
			network = "tcp6"
		}
		ln, err = reuseport.Listen(network, addr)
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("cannot listen on %s: the address is already in use (another northd? pick another with -listen)", addr)
	case err != nil:
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}
