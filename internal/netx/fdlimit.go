package netx

import (
	"log/slog"
	"syscall"
)

// descriptorReserve is how many descriptors the default -max-conns leaves
// for everything but client connections: the listeners, the admin
// listener and its clients, the store's connections, the users file and
// the certificate read on SIGHUP, the standard streams, and the connection
// each accept loop holds while it refuses it.
const descriptorReserve = 64

// MaxConnsForDescriptors returns the MaxConns for each of listeners
// Listeners, so that a full server runs out of connections it may take
// before it runs out of descriptors, which would fail accepts instead of
// refusing with an answer. It reads the descriptor limit (RLIMIT_NOFILE,
// whose soft value Go raises to the hard one at start) and, unless
// maxConns was given by the operator (-max-conns), lowers it so that every
// listener's connections fit under the limit with descriptorReserve to
// spare, and logs that it did. A given maxConns is kept, with a warning
// when it does not fit: past the limit, accepts fail and are retried
// (Listener.Accept) until connections close.
func MaxConnsForDescriptors(maxConns int, given bool, listeners int, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) { // unlimited
		return maxConns
	}
	fits := max((int64(lim.Cur)-descriptorReserve)/int64(max(listeners, 1)), 1)
	if int64(maxConns) <= fits {
		return maxConns
	}
	attrs := []any{"descriptor_limit", lim.Cur, "reserved", descriptorReserve, "subsystems", listeners}
	if given {
		log.Warn("-max-conns is above what the descriptor limit leaves for connections; past it, accepts fail and are retried",
			append([]any{"max_conns", maxConns, "fits", fits}, attrs...)...)
		return maxConns
	}
	log.Info("lowered the default -max-conns to fit the descriptor limit", append([]any{"max_conns", fits}, attrs...)...)
	return int(fits)
}
