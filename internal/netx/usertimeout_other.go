//go:build !linux

package netx

import (
	"net"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's. Keepalive, on
// by default for accepted connections, does not help here, as the kernel
// sends no keepalive probe while written data waits for its ack.
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
