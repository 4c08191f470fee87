package main

import (
	"net/netip"
	"unicode/utf8"

	"northd/internal/netx"
)

// loginProblem names why a login body was refused. It is a small integer
// rather than an error so that refusing a login allocates nothing: each
// problem has a response body built once at start-up (see rejectionBodies).
type loginProblem uint8

const (
	loginOK loginProblem = iota
	problemEmptyBody
	problemInvalidUTF8
	problemNotJSON
	problemTooDeep
	problemNotObject
	problemTrailingData
	problemUsernameMissing
	problemUsernameNotString
	problemUsernameEmpty
	problemUsernameTooLong
	problemPasswordMissing
	problemPasswordNotString
	problemPasswordEmpty
	problemIPNotString
	problemIPInvalid
	problemBodyTooLarge
	problemCount
)

// problemDescriptions are the sentences a north server reads in the
// "description" field. problemBodyTooLarge is filled in per server because it
// names the configured limit.
var problemDescriptions = [problemCount]string{
	problemEmptyBody:         "request body is empty; send a JSON object with username and password",
	problemInvalidUTF8:       "request body is not valid UTF-8",
	problemNotJSON:           "request body is not valid JSON",
	problemTooDeep:           "request body nests JSON deeper than 32 levels",
	problemNotObject:         "request body must be a JSON object",
	problemTrailingData:      "request body has data after the JSON object",
	problemUsernameMissing:   "username is required",
	problemUsernameNotString: "username must be a string",
	problemUsernameEmpty:     "username must not be empty",
	problemUsernameTooLong:   "username must be at most 256 bytes",
	problemPasswordMissing:   "password is required",
	problemPasswordNotString: "password must be a string",
	problemPasswordEmpty:     "password must not be empty",
	problemIPNotString:       "ip must be a string",
	problemIPInvalid:         "ip is not a valid IP address",
}

// problemReasons label login rejections in metrics.
var problemReasons = [problemCount]string{
	problemEmptyBody:         "empty_body",
	problemInvalidUTF8:       "invalid_utf8",
	problemNotJSON:           "not_json",
	problemTooDeep:           "too_deep",
	problemNotObject:         "not_object",
	problemTrailingData:      "trailing_data",
	problemUsernameMissing:   "username_missing",
	problemUsernameNotString: "username_not_string",
	problemUsernameEmpty:     "username_empty",
	problemUsernameTooLong:   "username_too_long",
	problemPasswordMissing:   "password_missing",
	problemPasswordNotString: "password_not_string",
	problemPasswordEmpty:     "password_empty",
	problemIPNotString:       "ip_not_string",
	problemIPInvalid:         "ip_invalid",
	problemBodyTooLarge:      "body_too_large",
}

const (
	// maxJSONDepth bounds nesting so a body of 64 KiB of '[' cannot
	// recurse deeply; a login object needs a depth of 1.
	maxJSONDepth = 32
	// maxUsernameLen bounds what the registry keeps per north server, so
	// that registry-max entries bound its memory.
	maxUsernameLen = 256
)

// fieldKind records what a login field held in the body.
type fieldKind uint8

const (
	fieldMissing fieldKind = iota
	fieldString
	fieldOther // present, but not a string
)

// The decoder keeps at most one byte past each field's limit: enough to
// tell that a value is too long, never enough for one large body to leave a
// large buffer in the pool.
const (
	usernameKeep = maxUsernameLen + 1
	ipKeep       = netx.MaxIPLen + 1
)

// loginRequest is one decoded login body. Instances are pooled, so they own
// only small buffers: username and ip are copied (unescaped, cut one byte
// past their limits) into buffers the loginRequest reuses, and the password
// is never copied at all. It is a view of the body, valid only until the
// handler returns, and reset drops it.
type loginRequest struct {
	username, ip []byte
	// password is the password's raw JSON string contents in the request
	// body, still escaped; appendPassword decodes it.
	password     []byte
	usernameKind fieldKind
	passwordKind fieldKind
	ipKind       fieldKind
	addr         netip.Addr // parsed ip when ipKind == fieldString
}

func (lr *loginRequest) reset() {
	lr.username = lr.username[:0]
	lr.password = nil
	lr.ip = lr.ip[:0]
	lr.usernameKind, lr.passwordKind, lr.ipKind = fieldMissing, fieldMissing, fieldMissing
	lr.addr = netip.Addr{}
}

// appendPassword appends the decoded password to dst. The caller owns dst
// and must clear it once the password has been checked.
func (lr *loginRequest) appendPassword(dst []byte) []byte {
	return appendPasswordDecoded(dst, lr.password)
}

// decode checks body against the login contract and fills lr. It returns
// loginOK or the first problem found: syntax problems before field problems,
// and fields in the order username, password, ip.
func (lr *loginRequest) decode(body []byte) loginProblem {
	lr.reset()
	d := jsonScanner{buf: body}
	d.skipSpace()
	if d.pos == len(body) {
		return problemEmptyBody
	}
	if !utf8.Valid(body) {
		return problemInvalidUTF8
	}
	if body[d.pos] != '{' {
		// Report a well-formed non-object (array, string, number…) as
		// such, and anything else as not JSON.
		if p := d.value(1); p != loginOK {
			return p
		}
		if d.skipSpace(); d.pos != len(body) {
			return problemNotJSON
		}
		return problemNotObject
	}
	if p := d.loginObject(lr); p != loginOK {
		return p
	}
	d.skipSpace()
	if d.pos != len(body) {
		return problemTrailingData
	}
	return lr.validate()
}

func (lr *loginRequest) validate() loginProblem {
	switch {
	case lr.usernameKind == fieldMissing:
		return problemUsernameMissing
	case lr.usernameKind == fieldOther:
		return problemUsernameNotString
	case len(lr.username) == 0:
		return problemUsernameEmpty
	case len(lr.username) > maxUsernameLen:
		return problemUsernameTooLong
	case lr.passwordKind == fieldMissing:
		return problemPasswordMissing
	case lr.passwordKind == fieldOther:
		return problemPasswordNotString
	case len(lr.password) == 0:
		// Raw and decoded are empty together: every escape decodes to
		// at least one byte.
		return problemPasswordEmpty
	case lr.ipKind == fieldOther:
		return problemIPNotString
	case lr.ipKind == fieldString:
		addr, ok := netx.ParseIP(lr.ip)
		if !ok {
			return problemIPInvalid
		}
		lr.addr = addr
	}
	return loginOK
}

// jsonScanner is a strict RFC 8259 scanner over a body already known to be
// valid UTF-8. It validates everything and copies out only the three login
// fields, so it neither allocates nor keeps the body.
type jsonScanner struct {
	buf []byte
	pos int
}

func (d *jsonScanner) skipSpace() {
	buf, pos := d.buf, d.pos
	for pos < len(buf) && isJSONSpace[buf[pos]] {
		pos++
	}
	d.pos = pos
}

// isJSONSpace marks JSON's four whitespace bytes; plainStringByte marks the
// bytes a string can hold as they are: not '"', '\\' or a control byte.
var isJSONSpace, plainStringByte = func() (space, plain [256]bool) {
	for _, c := range " \t\n\r" {
		space[c] = true
	}
	for c := 0x20; c < 256; c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return space, plain
}()

// loginField names the fields of a login body northd reads.
type loginField uint8

const (
	fieldNone loginField = iota
	fieldUsername
	fieldPassword
	fieldIP
)

func loginFieldNamed(name []byte) loginField {
	switch string(name) {
	case "username":
		return fieldUsername
	case "password":
		return fieldPassword
	case "ip":
		return fieldIP
	}
	return fieldNone
}

// setString records the raw string value of field f.
func (lr *loginRequest) setString(f loginField, raw []byte) {
	switch f {
	case fieldUsername:
		lr.username, _ = appendUnescaped(lr.username[:0], raw, usernameKeep)
		lr.usernameKind = fieldString
	case fieldPassword:
		lr.password = raw
		lr.passwordKind = fieldString
	case fieldIP:
		lr.ip, _ = appendUnescaped(lr.ip[:0], raw, ipKeep)
		lr.ipKind = fieldString
	}
}

// setOther records that field f holds a value other than a string.
func (lr *loginRequest) setOther(f loginField) {
	switch f {
	case fieldUsername:
		lr.username, lr.usernameKind = lr.username[:0], fieldOther
	case fieldPassword:
		lr.password, lr.passwordKind = nil, fieldOther
	case fieldIP:
		lr.ip, lr.ipKind = lr.ip[:0], fieldOther
	}
}

// loginObject scans the top-level object, which starts at d.pos.
func (d *jsonScanner) loginObject(lr *loginRequest) loginProblem {
	if d.openEmpty('}') {
		return loginOK
	}
	for {
		key, ok := d.objectKey()
		if !ok || d.pos >= len(d.buf) {
			return problemNotJSON
		}
		f := loginFieldNamed(key)
		// A key spelled with escapes is unescaped to be compared. Only
		// one of at most 8 escaped characters can name a login field.
		if f == fieldNone && len(key) <= 8*len(`\u0000`) && hasBackslash(key) {
			var scratch [48]byte
			if name, ok := appendUnescaped(scratch[:0], key, len(scratch)); ok {
				f = loginFieldNamed(name)
			}
		}
		if f != fieldNone && d.buf[d.pos] == '"' {
			// A repeated key replaces the earlier value, as in most
			// JSON decoders.
			start := d.pos + 1
			n, ok := d.rawString()
			if !ok {
				return problemNotJSON
			}
			lr.setString(f, d.buf[start:start+n])
		} else {
			if p := d.value(2); p != loginOK {
				return p
			}
			lr.setOther(f)
		}
		if more, ok := d.nextMember('}'); !ok {
			return problemNotJSON
		} else if !more {
			return loginOK
		}
	}
}

// openEmpty moves past the opening bracket at d.pos and the space after it,
// and reports whether closer follows at once (and moves past it too).
func (d *jsonScanner) openEmpty(closer byte) bool {
	d.pos++
	d.skipSpace()
	if d.pos < len(d.buf) && d.buf[d.pos] == closer {
		d.pos++
		return true
	}
	return false
}

// objectKey scans a member's key, the colon and the space around it, and
// returns the raw (still escaped) key.
func (d *jsonScanner) objectKey() ([]byte, bool) {
	if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
		return nil, false
	}
	start := d.pos + 1
	n, ok := d.rawString()
	if !ok {
		return nil, false
	}
	d.skipSpace()
	if d.pos >= len(d.buf) || d.buf[d.pos] != ':' {
		return nil, false
	}
	d.pos++
	d.skipSpace()
	return d.buf[start : start+n], true
}

// nextMember scans what follows a member of an object or an array: a comma
// (more follows) or closer (the end).
func (d *jsonScanner) nextMember(closer byte) (more, ok bool) {
	d.skipSpace()
	if d.pos >= len(d.buf) {
		return false, false
	}
	switch d.buf[d.pos] {
	case ',':
		d.pos++
		d.skipSpace()
		return true, true
	case closer:
		d.pos++
		return false, true
	}
	return false, false
}

// value scans any JSON value at d.pos, at nesting depth depth.
func (d *jsonScanner) value(depth int) loginProblem {
	if d.pos >= len(d.buf) {
		return problemNotJSON
	}
	switch c := d.buf[d.pos]; {
	case c == '"':
		if _, ok := d.rawString(); !ok {
			return problemNotJSON
		}
		return loginOK
	case c == '{' || c == '[':
		if depth > maxJSONDepth {
			return problemTooDeep
		}
		return d.container(depth)
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return problemNotJSON
}

// container scans an object or array whose opening bracket is at d.pos.
func (d *jsonScanner) container(depth int) loginProblem {
	isObject := d.buf[d.pos] == '{'
	closer := byte(']')
	if isObject {
		closer = '}'
	}
	if d.openEmpty(closer) {
		return loginOK
	}
	for {
		if isObject {
			if _, ok := d.objectKey(); !ok {
				return problemNotJSON
			}
		}
		if p := d.value(depth + 1); p != loginOK {
			return p
		}
		if more, ok := d.nextMember(closer); !ok {
			return problemNotJSON
		} else if !more {
			return loginOK
		}
	}
}

func (d *jsonScanner) literal(word string) loginProblem {
	if len(d.buf)-d.pos < len(word) || string(d.buf[d.pos:d.pos+len(word)]) != word {
		return problemNotJSON
	}
	d.pos += len(word)
	return loginOK
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *jsonScanner) number() loginProblem {
	if d.buf[d.pos] == '-' {
		d.pos++
	}
	if d.pos >= len(d.buf) {
		return problemNotJSON
	}
	if d.buf[d.pos] == '0' {
		d.pos++
	} else if !d.digits() {
		return problemNotJSON
	}
	if d.pos < len(d.buf) && d.buf[d.pos] == '.' {
		d.pos++
		if !d.digits() {
			return problemNotJSON
		}
	}
	if d.pos < len(d.buf) && (d.buf[d.pos] == 'e' || d.buf[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.buf) && (d.buf[d.pos] == '+' || d.buf[d.pos] == '-') {
			d.pos++
		}
		if !d.digits() {
			return problemNotJSON
		}
	}
	return loginOK
}

// digits consumes one or more decimal digits.
func (d *jsonScanner) digits() bool {
	start := d.pos
	for d.pos < len(d.buf) && d.buf[d.pos] >= '0' && d.buf[d.pos] <= '9' {
		d.pos++
	}
	return d.pos > start
}

// rawString validates the string whose opening quote is at d.pos, moves past
// its closing quote and returns the length of its raw (still escaped)
// contents.
func (d *jsonScanner) rawString() (int, bool) {
	d.pos++
	start := d.pos
	for d.pos < len(d.buf) {
		buf, pos := d.buf, d.pos
		for pos < len(buf) && plainStringByte[buf[pos]] {
			pos++
		}
		if d.pos = pos; pos == len(buf) {
			break
		}
		c := buf[pos]
		switch {
		case c == '"':
			n := d.pos - start
			d.pos++
			return n, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			if d.pos+1 >= len(d.buf) {
				return 0, false
			}
			switch d.buf[d.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos += 2
			case 'u':
				if d.pos+6 > len(d.buf) {
					return 0, false
				}
				if _, ok := hex4(d.buf[d.pos+2 : d.pos+6]); !ok {
					return 0, false
				}
				d.pos += 6
			default:
				return 0, false
			}
		default:
			d.pos++
		}
	}
	return 0, false
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the decoded form of raw, the contents of a string
// already checked by rawString, and stops once it has appended limit bytes
// or a little more (never more than one character past it), so that a huge
// value cannot grow dst. A lone UTF-16 surrogate becomes U+FFFD, as in
// encoding/json. It reports false only for input rawString would refuse.
func appendUnescaped(dst, raw []byte, limit int) ([]byte, bool) {
	end := len(dst) + limit
	for i := 0; i < len(raw) && len(dst) < end; {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			j = min(j, i+end-len(dst))
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return dst, false
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+6 > len(raw) {
				return dst, false
			}
			r, ok := hex4(raw[i+2 : i+6])
			if !ok {
				return dst, false
			}
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if lo, ok := hex4(raw[i+2 : i+6]); ok && lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}
