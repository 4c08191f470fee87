package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config is everything northd can be told at start-up. Each field is a flag
// with an environment twin named NORTHD_ and the flag in capitals, with
// dashes as underscores (-max-body-size and NORTHD_MAX_BODY_SIZE). A flag on
// the command line wins over its environment twin.
type Config struct {
	Listen          []string
	ListenNames     []string // per Listen entry: its NAME= or ""
	Admin           string
	AdminPublic     bool
	Pprof           bool
	MaxBodySize     int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	MaxConns        int
	MaxConnsPerIP   int
	RegistryMax     int
	MaxIPsPerUser   int
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	LogLevel        string
	LogFormat       string
	TrustedProxies  []netip.Prefix
	ProxyProtocol   bool
	ReusePort       bool
	Prefork         bool
	ReduceMemory    bool

	// Client addresses and connections.
	ClientIPHeader    string         // X-Forwarded-For or X-Real-IP
	ProxyProtocolFrom []netip.Prefix // peers whose connections start with a PROXY header; -proxy-protocol sets it to TrustedProxies
	MaxConnsGiven     bool           // -max-conns or NORTHD_MAX_CONNS was given: start keeps it even above the descriptor limit
	// LingerTimeout is how long a connection closed after a 413 is
	// drained at most; not a flag: 0 is netx's default (2 s), and
	// tests lengthen it to outlast a slow machine.
	LingerTimeout time.Duration

	ShowVersion bool

	// Credentials, tokens and TLS (authconfig.go).
	Users                string
	InsecureOpen         bool
	AuthCacheTTL         time.Duration
	MaxLoginFailures     int
	MaxUserLoginFailures int
	LoginFailureWindow   time.Duration
	IPv6Prefix           int
	TokenTTL             time.Duration
	TLSCert, TLSKey      string

	// Where tokens and north servers live (storeconfig.go).
	Store        string
	StoreTimeout time.Duration

	// The event log and its streams (events.go).
	Events Events
	// Webhooks (push.go).
	Push Push
}

// UsageError is a bad flag or environment value; main exits 2 on it.
type UsageError struct{ msg string }

func (e UsageError) Error() string { return e.msg }

// Usagef is a UsageError.
func Usagef(format string, args ...any) error {
	return UsageError{msg: fmt.Sprintf(format, args...)}
}

// ErrHelp reports that -h was asked for and usage was printed.
var ErrHelp = errors.New("help requested")

// newFlagSet defines every flag on a new set, each storing into cfg,
// except -listen and -trusted-proxies, which are stored as given in the
// strings returned, for parseConfigEnv to split and check.
func newFlagSet(cfg *Config) (fs *flag.FlagSet, listen, trusted *string) {
	fs = flag.NewFlagSet("northd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen = fs.String("listen", "127.0.0.1:8000", "comma-separated `addresses`, one subsystem on each, as ADDR or NAME=ADDR; a subsystem is named by its port unless named")
	fs.StringVar(&cfg.Admin, "admin", "127.0.0.1:9100", "admin `address` for /metrics, /north/servers, publishing events (POST /north/events) and /debug/pprof/; empty or off disables it")
	fs.BoolVar(&cfg.AdminPublic, "admin-public", false, "allow -admin on a non-loopback address")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve /debug/pprof/ on the admin address")
	fs.IntVar(&cfg.MaxBodySize, "max-body-size", 64<<10, "largest request body in `bytes`; larger ones get 413")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", 10*time.Second, "time allowed to read one request, headers and body")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", 10*time.Second, "time allowed to write one response")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 60*time.Second, "how long an idle keep-alive connection is kept open")
	fs.IntVar(&cfg.MaxConns, "max-conns", 256*1024, "most connections served at once per subsystem; the next gets 503 and is closed")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 0, "most connections from one client address per subsystem; the next gets 429 and is closed; 0 means no limit (behind a proxy without -proxy-protocol-from every client has the proxy's address)")
	fs.IntVar(&cfg.RegistryMax, "registry-max", 65536, "most north servers remembered per subsystem; the least recently seen goes first")
	fs.IntVar(&cfg.MaxIPsPerUser, "max-ips-per-user", 16, "with -users, most north servers (ips) one username holds per subsystem; past it that username's least recently seen is forgotten, never another's")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "time allowed for in-flight requests to finish after the drain delay")
	fs.DurationVar(&cfg.DrainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz answers 503 while serving normally, before listeners close")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "`level`: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "`format`: text or json")
	trusted = fs.String("trusted-proxies", "", "comma-separated `CIDRs` whose -client-ip-header is believed")
	fs.StringVar(&cfg.ClientIPHeader, "client-ip-header", "X-Forwarded-For", "the one `header` that names the client, from -trusted-proxies: X-Forwarded-For (its rightmost hop not in -trusted-proxies) or X-Real-IP (which every trusted proxy must set, replacing the client's)")
	fs.Func("proxy-protocol-from", "comma-separated `CIDRs` whose connections must start with a PROXY protocol v1/v2 header, whose source address is then the client's", func(s string) error {
		list, bad := parsePrefixList(s)
		if bad != "" {
			return fmt.Errorf("%q is not an address or CIDR such as 10.0.0.0/8", bad)
		}
		cfg.ProxyProtocolFrom = list
		return nil
	})
	fs.BoolVar(&cfg.ProxyProtocol, "proxy-protocol", false, "as -proxy-protocol-from with the -trusted-proxies list (kept for compatibility)")
	fs.BoolVar(&cfg.ReusePort, "reuseport", false, "listen with SO_REUSEPORT so several northd processes share a port")
	fs.BoolVar(&cfg.Prefork, "prefork", false, "run one child process per CPU, each with GOMAXPROCS=1, sharing the listen addresses (implies -reuseport; needs -store redis://…); child k serves -admin on its port plus k")
	fs.BoolVar(&cfg.ReduceMemory, "reduce-memory", false, "release per-connection buffers while a keep-alive connection is idle: less memory per idle connection, one small allocation per request")
	addAuthFlags(fs, cfg)
	addStoreFlags(fs, cfg)
	addEventFlags(fs, cfg)
	addPushFlags(fs, cfg)
	fs.BoolVar(&cfg.ShowVersion, "version", false, "print northd's version and VCS revision, and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "northd serves the north-interface login on one or more subsystem ports.\n\nUsage: northd [flags]\n       northd hash-password < password\n\nEvery flag can also be set in the environment: -max-body-size as NORTHD_MAX_BODY_SIZE.\n\n")
		fs.PrintDefaults()
	}
	return fs, listen, trusted
}

// Parse reads the configuration from the command line and, for
// each flag not on it, its environment twin through lookupEnv, which
// answers as os.LookupEnv does. A variable that is set counts even when
// empty, exactly as its flag given "" would: NORTHD_ADMIN= disables the
// admin listener as -admin= does, and NORTHD_MAX_BODY_SIZE= is refused as
// -max-body-size= is.
func Parse(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) (Config, error) {
	var cfg Config
	fs, listen, trusted := newFlagSet(&cfg)

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return cfg, ErrHelp
		}
		return cfg, Usagef("%v (run northd -h for the list of flags)", err)
	}
	if fs.NArg() > 0 {
		return cfg, Usagef("unexpected argument %q: northd takes flags only (run northd -h)", fs.Arg(0))
	}
	setOnCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setOnCommandLine[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			// A command, not a setting: deploy tools often set
			// NORTHD_VERSION for their own ends.
			return
		}
		name := envName(f.Name)
		v, ok := lookupEnv(name)
		if !ok || setOnCommandLine[f.Name] || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = Usagef("invalid value %q for %s: %v", v, name, err)
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	_, maxConnsInEnv := lookupEnv(envName("max-conns"))
	cfg.MaxConnsGiven = setOnCommandLine["max-conns"] || maxConnsInEnv

	for _, a := range strings.Split(*listen, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		// NAME=ADDR names the subsystem; instances sharing a -store
		// share the tokens of subsystems of the same name.
		name, addr, named := strings.Cut(a, "=")
		if !named {
			name, addr = "", a
		} else if !validSubsystemName(name) {
			return cfg, Usagef("invalid subsystem name %q in -listen %s: use letters, digits, '.', '_' and '-'", name, a)
		}
		if err := checkHostPort(addr); err != nil {
			return cfg, Usagef("invalid -listen address %q: %v", addr, err)
		}
		cfg.Listen = append(cfg.Listen, addr)
		cfg.ListenNames = append(cfg.ListenNames, name)
	}
	if len(cfg.Listen) == 0 {
		return cfg, Usagef("-listen needs at least one address, such as 127.0.0.1:8000")
	}
	if cfg.Admin == "off" {
		cfg.Admin = ""
	}
	if cfg.Admin != "" {
		if err := checkHostPort(cfg.Admin); err != nil {
			return cfg, Usagef("invalid -admin address %q: %v", cfg.Admin, err)
		}
		if !cfg.AdminPublic && !isLoopbackHost(cfg.Admin) {
			return cfg, Usagef("-admin %s is not a loopback address; the admin listener exposes metrics and the registry, so pass -admin-public to serve it there anyway", cfg.Admin)
		}
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"-max-body-size", cfg.MaxBodySize}, {"-max-conns", cfg.MaxConns}, {"-registry-max", cfg.RegistryMax}, {"-max-ips-per-user", cfg.MaxIPsPerUser}} {
		if c.v <= 0 {
			return cfg, Usagef("%s must be positive, not %d", c.name, c.v)
		}
	}
	if cfg.MaxConnsPerIP < 0 {
		return cfg, Usagef("-max-conns-per-ip must be 0 (no limit) or positive, not %d", cfg.MaxConnsPerIP)
	}
	for _, c := range []struct {
		name string
		v    time.Duration
	}{{"-read-timeout", cfg.ReadTimeout}, {"-write-timeout", cfg.WriteTimeout}, {"-idle-timeout", cfg.IdleTimeout}, {"-shutdown-timeout", cfg.ShutdownTimeout}} {
		if c.v <= 0 {
			return cfg, Usagef("%s must be positive, not %v", c.name, c.v)
		}
	}
	if cfg.DrainDelay < 0 {
		return cfg, Usagef("-drain-delay must not be negative")
	}
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return cfg, Usagef("-log-level must be debug, info, warn or error, not %q", cfg.LogLevel)
	}
	switch cfg.LogFormat {
	case "text", "json":
	default:
		return cfg, Usagef("-log-format must be text or json, not %q", cfg.LogFormat)
	}
	trustedList, bad := parsePrefixList(*trusted)
	if bad != "" {
		return cfg, Usagef("invalid -trusted-proxies entry %q: give an address or CIDR such as 10.0.0.0/8", bad)
	}
	cfg.TrustedProxies = trustedList
	switch {
	case strings.EqualFold(cfg.ClientIPHeader, "X-Forwarded-For"):
		cfg.ClientIPHeader = "X-Forwarded-For"
	case strings.EqualFold(cfg.ClientIPHeader, "X-Real-IP"):
		cfg.ClientIPHeader = "X-Real-IP"
	default:
		return cfg, Usagef("-client-ip-header must be X-Forwarded-For or X-Real-IP, not %q", cfg.ClientIPHeader)
	}
	if cfg.Prefork {
		if cfg.Store == "memory" {
			return cfg, Usagef("-prefork needs a shared store: each child would keep its own tokens, so a verify or logout that reaches another child would fail; give -store redis://host:port/db")
		}
		cfg.ReusePort = true
		for _, a := range cfg.Listen {
			if _, port, _ := net.SplitHostPort(a); port == "0" {
				return cfg, Usagef("-prefork needs fixed ports: children would each pick a different port for %s", a)
			}
		}
	}
	if cfg.ProxyProtocol {
		if len(cfg.ProxyProtocolFrom) > 0 {
			return cfg, Usagef("-proxy-protocol and -proxy-protocol-from both given: keep -proxy-protocol-from, which believes PROXY headers from its own list")
		}
		if len(cfg.TrustedProxies) == 0 {
			return cfg, Usagef("-proxy-protocol needs -trusted-proxies: PROXY headers are believed only from trusted peers (or give -proxy-protocol-from CIDRs)")
		}
		cfg.ProxyProtocolFrom = cfg.TrustedProxies
	}
	if err := checkAuthConfig(&cfg); err != nil {
		return cfg, err
	}
	if err := checkStoreConfig(&cfg); err != nil {
		return cfg, err
	}
	if err := checkEventConfig(&cfg); err != nil {
		return cfg, err
	}
	if err := checkPushConfig(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func envName(flagName string) string {
	return "NORTHD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port == "" {
		return errors.New("missing port")
	}
	return nil
}

func isLoopbackHost(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parsePrefixList parses comma-separated CIDRs or addresses; bad is the
// first entry that is neither, or "".
func parsePrefixList(s string) (list []netip.Prefix, bad string) {
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		p, err := parsePrefix(e)
		if err != nil {
			return nil, e
		}
		list = append(list, p)
	}
	return list, ""
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// IPsPerUser is -max-ips-per-user, or 0 (no bound) in open mode, where a
// username proves nothing and any login may take any ip, as in the seed.
func (c *Config) IPsPerUser() int {
	if c.Users == "" {
		return 0
	}
	return c.MaxIPsPerUser
}
