package main

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

// fitMaxConnsToDescriptors reads the descriptor limit (RLIMIT_NOFILE, whose
// soft value Go raises to the hard one at start) and, unless -max-conns
// was given, lowers the default so that every subsystem's connections fit
// under it with descriptorReserve to spare, and logs that it did. A given
// -max-conns is kept, with a warning when it does not fit: past the limit,
// accepts fail and are retried (connListener.Accept) until connections
// close.
func fitMaxConnsToDescriptors(cfg *config, log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) { // unlimited
		return
	}
	subsystems := len(cfg.Listen)
	fits := max((int64(lim.Cur)-descriptorReserve)/int64(subsystems), 1)
	if int64(cfg.MaxConns) <= fits {
		return
	}
	attrs := []any{"descriptor_limit", lim.Cur, "reserved", descriptorReserve, "subsystems", subsystems}
	if cfg.MaxConnsGiven {
		log.Warn("-max-conns is above what the descriptor limit leaves for connections; past it, accepts fail and are retried",
			append([]any{"max_conns", cfg.MaxConns, "fits", fits}, attrs...)...)
		return
	}
	cfg.MaxConns = int(fits)
	log.Info("lowered the default -max-conns to fit the descriptor limit", append([]any{"max_conns", fits}, attrs...)...)
}
