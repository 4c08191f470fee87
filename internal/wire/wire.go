// Package wire is northd's bytes on the wire, apart from the server: the
// strict login decoder, the bearer parser and the answers' bodies, byte for
// byte as docs/north-servers.md's wire contract shows them. It holds pure
// functions over byte slices, with no server state and no fasthttp, so
// that each can be tested and fuzzed alone. The decoder and the parser allocate nothing;
// refusals are built once, at start-up, and the two answers built per
// request are appended to the caller's buffer.
package wire

// lowerHexDigit is the value of c, one of 0-9 and a-f. It is the one hex
// digit decoder of the package: a bearer token takes only the lowercase
// digits /north/login hands out, and hex4 folds A-F to a-f first, since
// JSON's \u escapes take either case.
func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
