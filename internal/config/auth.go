package config

import (
	"flag"
	"time"
)

// addAuthFlags adds the flags for credentials, tokens and TLS.
func addAuthFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.Users, "users", "", "users `file` of username:hash lines (bcrypt or argon2id; see northd hash-password); without it northd is in open mode and any non-empty credentials log in")
	fs.BoolVar(&cfg.InsecureOpen, "insecure-open", false, "allow open mode (no -users) on non-loopback addresses, accepting any credentials on purpose")
	fs.DurationVar(&cfg.AuthCacheTTL, "auth-cache-ttl", 10*time.Minute, "how long a verified username and password log in again without a password hash")
	fs.IntVar(&cfg.MaxLoginFailures, "max-login-failures", 10, "failed logins allowed from one client address per -login-failure-window; beyond them its logins get 429")
	fs.IntVar(&cfg.MaxUserLoginFailures, "max-user-login-failures", 50, "failed logins allowed for one username per -login-failure-window, from all addresses together; beyond them its logins get 429")
	fs.DurationVar(&cfg.LoginFailureWindow, "login-failure-window", time.Minute, "the window of -max-login-failures and -max-user-login-failures")
	fs.IntVar(&cfg.IPv6Prefix, "ipv6-prefix", 64, "`bits` of an IPv6 address that name one client for -max-login-failures and -max-conns-per-ip (a client often holds a whole /64); IPv4 addresses count one by one")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", time.Hour, "how long a token verifies after its login")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate `file` (PEM, with its chain) to serve every subsystem over HTTPS; needs -tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key `file` (PEM) for -tls-cert")
}

// checkAuthConfig checks the flags addAuthFlags added, once every flag is
// parsed.
func checkAuthConfig(cfg *Config) error {
	for _, c := range []struct {
		name string
		v    time.Duration
	}{{"-auth-cache-ttl", cfg.AuthCacheTTL}, {"-login-failure-window", cfg.LoginFailureWindow}, {"-token-ttl", cfg.TokenTTL}} {
		if c.v <= 0 {
			return Usagef("%s must be positive, not %v", c.name, c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"-max-login-failures", cfg.MaxLoginFailures}, {"-max-user-login-failures", cfg.MaxUserLoginFailures}} {
		if c.v <= 0 {
			return Usagef("%s must be positive, not %d", c.name, c.v)
		}
	}
	if cfg.IPv6Prefix < 1 || cfg.IPv6Prefix > 128 {
		return Usagef("-ipv6-prefix must be 1 to 128 (bits of an IPv6 address that name one client), not %d", cfg.IPv6Prefix)
	}
	if cfg.TokenTTL < time.Second {
		return Usagef("-token-ttl must be at least 1s, not %v", cfg.TokenTTL)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return Usagef("-tls-cert and -tls-key go together: give both, or neither for plain HTTP")
	}
	if cfg.Users == "" && !cfg.InsecureOpen {
		// Redis's protected mode, for logins: open mode answers only
		// on loopback unless the operator says otherwise.
		for _, a := range cfg.Listen {
			if !isLoopbackHost(a) {
				return Usagef("-listen %s is not a loopback address, and without -users any credentials log in; give -users FILE, or -insecure-open to accept any credentials on purpose", a)
			}
		}
	}
	return nil
}
