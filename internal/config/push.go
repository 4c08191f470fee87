package config

import (
	"flag"
	"net/netip"
	"time"
)

// Push are the flags of webhooks (internal/push, internal/webhooks).
type Push struct {
	Allow            []netip.Prefix // -push-allow: where webhooks may go; none: off
	CAFile           string
	SecretKeyFile    string
	Batch            int
	Timeout          time.Duration
	DisableAfter     time.Duration
	Rate             float64
	Workers          int
	MaxSubscriptions int
	Lease            time.Duration
	MaxBackoff       time.Duration
}

func addPushFlags(fs *flag.FlagSet, cfg *Config) {
	p := &cfg.Push
	fs.Func("push-allow", "comma-separated `CIDRs` where webhooks may go: a subscription's url must be the north server's login ip, inside one of them; none (the default) turns webhooks off. Loopback, link-local, multicast and metadata addresses only when an entry names them (127.0.0.0/8, not 0.0.0.0/0)", func(s string) error {
		list, bad := parsePrefixList(s)
		if bad != "" {
			return Usagef("%q is not a CIDR such as 10.0.0.0/8", bad)
		}
		p.Allow = list
		return nil
	})
	fs.StringVar(&p.CAFile, "push-ca", "", "PEM `file` of the certificate authorities https webhook urls are checked against, instead of the system's")
	fs.StringVar(&p.SecretKeyFile, "push-secret-key-file", "", "`file` of AES-256 keys, 64 hex digits a line, the first sealing: with a shared -store, webhook secrets are kept there sealed by it, so that reading Redis is not enough to sign webhooks; every instance needs the same file")
	fs.IntVar(&p.Batch, "push-batch", 100, "most events in one webhook delivery (at most 256 KiB of them)")
	fs.DurationVar(&p.Timeout, "push-timeout", 10*time.Second, "time allowed to one webhook attempt, answer included; less than half -push-lease")
	fs.DurationVar(&p.DisableAfter, "push-disable-after", 24*time.Hour, "a webhook subscription failing this long without a success is disabled, until its north server enables it again")
	fs.Float64Var(&p.Rate, "push-rate", 10, "most webhook deliveries per second to one subscription")
	fs.IntVar(&p.Workers, "push-workers", 64, "most webhook attempts in flight at once, all subscriptions together")
	fs.IntVar(&p.MaxSubscriptions, "push-max-subscriptions", 10_000, "most webhook subscriptions per subsystem")
	fs.DurationVar(&p.MaxBackoff, "push-max-backoff", time.Hour, "longest wait between two attempts of a failing webhook delivery: the retries wait 5s, 30s, 2m, 10m, 30m, then 1h, each capped at this")
	fs.DurationVar(&p.Lease, "push-lease", 30*time.Second, "with a shared -store, how long one instance delivers for a subscription without renewing its lease: how soon another takes over when it dies")
}

func checkPushConfig(cfg *Config) error {
	p := cfg.Push
	switch {
	case p.Batch < 1 || p.Batch > 1000:
		return Usagef("-push-batch must be from 1 to 1000, not %d", p.Batch)
	case p.Timeout <= 0 || p.DisableAfter <= 0 || p.MaxBackoff <= 0:
		return Usagef("-push-timeout, -push-disable-after and -push-max-backoff must be positive")
	case p.Rate <= 0:
		return Usagef("-push-rate must be positive, not %v", p.Rate)
	case p.Workers < 1 || p.MaxSubscriptions < 1:
		return Usagef("-push-workers and -push-max-subscriptions must be positive")
	case p.Lease < 300*time.Millisecond:
		return Usagef("-push-lease must be at least 300ms, not %v", p.Lease)
	case p.Timeout >= p.Lease/2:
		// An attempt still in flight when the lease lapses would be
		// posted again by the next holder at the same time: the lease
		// is renewed just before the POST, which is cut at the lease's
		// time left, so a -push-timeout near the lease would cut
		// attempts short.
		return Usagef("-push-timeout (%v) must be less than half of -push-lease (%v): an attempt must end well within the lease that makes the delivery this instance's; set -push-timeout below %v or -push-lease above %v",
			p.Timeout, p.Lease, p.Lease/2, 2*p.Timeout)
	}
	return nil
}
