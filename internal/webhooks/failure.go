package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
)

// What a failed attempt tells the north server, and the operator's
// listings: a category, never the remote's bytes nor Go's error text,
// which would make subscribing a port scanner (an SSH banner, "connection
// refused" against "no route"). The full error goes to the log.
const (
	FailureNotAllowed  = "address not allowed: -push-allow does not permit it; ask the operator"
	FailureRefused     = "connection refused: nothing listens on that port"
	FailureTimedOut    = "timed out: no answer within -push-timeout"
	FailureTLS         = "TLS failed: the https handshake did not complete; serve TLS there with a certificate northd trusts, or use http://"
	FailureNotHTTP     = "not HTTP: what listens on that port closed the connection or answered something that is not HTTP"
	FailureUnreachable = "unreachable: no route to that address"
)

// Failure is the category of an attempt's error, as one of the sentences
// above.
func Failure(err error) string {
	var netErr net.Error
	var op *net.OpError
	switch {
	case IsRefused(err):
		return FailureNotAllowed
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailureRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return FailureTimedOut
	case isTLS(err):
		return FailureTLS
	case errors.As(err, &op) && op.Op == "dial":
		return FailureUnreachable // no route, network down, a name not found
	default:
		// Past the dial and the handshake, whatever fails is the
		// answer: garbage, a reset, or a close before any status line.
		return FailureNotHTTP
	}
}

// FailureStatus is the category of an answer that is not a 2xx: its
// status and the standard text for it, not the receiver's own reason
// phrase or body.
func FailureStatus(status int) string {
	text := "answered " + strconv.Itoa(status)
	if std := http.StatusText(status); std != "" {
		text += " " + std
	}
	return text
}

// TLSError is an https handshake that failed.
type TLSError struct{ Err error }

func (e *TLSError) Error() string { return "TLS handshake: " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

func isTLS(err error) bool {
	_, ok := errors.AsType[*TLSError](err)
	return ok
}
