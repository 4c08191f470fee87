package wire

// BearerProblem names why a request's Authorization header holds no usable
// token. Like LoginProblem it is a small integer, so that refusing a token
// allocates nothing: each problem has its answer built once (Refusal).
type BearerProblem uint8

// The results of a token check: ParseBearer finds BearerNotBearer and
// BearerMalformed; the server finds the others, from the headers and from
// its store. BearerProblemCount sizes arrays indexed by BearerProblem.
const (
	BearerOK BearerProblem = iota
	BearerMissing
	BearerSeveral
	BearerNotBearer
	BearerMalformed
	BearerUnknown // well-formed, but not a live token here
	BearerExpired
	BearerProblemCount
)

// Reason is p's label in metrics: "valid", "missing", "not_bearer"…
func (p BearerProblem) Reason() string { return bearerReasons[p] }

// bearerReasons label token checks in metrics.
var bearerReasons = [BearerProblemCount]string{"valid", "missing", "several_headers", "not_bearer", "malformed", "unknown", "expired"}

// ParseBearer parses an Authorization header's value, "Bearer <32
// lowercase hex digits>", the form /north/login hands out, into the token.
// The scheme is case-insensitive (RFC 7235); the token is not. It takes
// the value's bytes rather than the request, so that it stays apart from
// fasthttp and can be fuzzed alone.
func ParseBearer(v []byte) ([16]byte, BearerProblem) {
	const scheme = "bearer"
	var token [16]byte
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return token, BearerNotBearer
	}
	rest := v[len(scheme):]
	if len(rest) > 0 && rest[0] != ' ' {
		return token, BearerNotBearer // "Bearerx…" is another scheme
	}
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	if len(rest) != 32 {
		return token, BearerMalformed
	}
	for i := range token {
		hi, ok1 := lowerHexDigit(rest[2*i])
		lo, ok2 := lowerHexDigit(rest[2*i+1])
		if !ok1 || !ok2 {
			return token, BearerMalformed
		}
		token[i] = hi<<4 | lo
	}
	return token, BearerOK
}

// asciiEqualFold compares b with lower, which is lowercase ASCII.
func asciiEqualFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
