package config

import (
	"flag"
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
