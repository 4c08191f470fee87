package benchutil

import "strings"

// SafeName makes a host name safe in a report's file name: every rune
// but ASCII letters, digits, '-' and '.' becomes '-' ("host" for none).
func SafeName(s string) string {
	if s == "" {
		return "host"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, s)
}

// ShellQuote quotes an argument for a POSIX shell when it needs it, so
// that a command a report lists can be pasted and run as it stands.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
