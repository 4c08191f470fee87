package config

import (
	"flag"
	"strings"
	"time"
)

// addStoreFlags adds the flags for where tokens and north servers live.
func addStoreFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.Store, "store", "memory", "where tokens and north servers live: memory (this process), redis://[user:pass@]host:port/db, rediss://… (TLS), or host:port,host:port for Redis Cluster; Valkey works alike")
	fs.DurationVar(&cfg.StoreTimeout, "store-timeout", time.Second, "deadline of the store call a login, verification or logout makes; past it that request gets 503 (the store is declared down, with /readyz 503, only after 3 failed probes in a row)")
}

func checkStoreConfig(cfg *Config) error {
	if cfg.StoreTimeout <= 0 {
		return Usagef("-store-timeout must be positive, not %v", cfg.StoreTimeout)
	}
	if cfg.Store == "" {
		return Usagef("-store must be memory or a Redis URL, not empty")
	}
	if cfg.Store != "memory" && !strings.Contains(cfg.Store, "://") {
		// A Redis Cluster's seed addresses; a URL is parsed by the
		// store itself, whose client knows its syntax.
		for _, a := range strings.Split(cfg.Store, ",") {
			if err := checkHostPort(strings.TrimSpace(a)); err != nil {
				return Usagef("invalid -store address %q: %v (want memory, redis://host:port or host:port,host:port for a cluster)", a, err)
			}
		}
	}
	return nil
}

// validSubsystemName accepts what is safe in a metrics label and a Redis
// key.
func validSubsystemName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
