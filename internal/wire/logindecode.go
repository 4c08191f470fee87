package wire

import (
	"net/netip"
	"unicode/utf8"
	"unsafe"
)

// LoginProblem names why a login body was refused. It is a small integer
// rather than an error so that refusing a login allocates nothing: each
// problem has a response body built once at start-up (see RejectionBodies).
type LoginProblem uint8

// The problems Decode reports, and ProblemBodyTooLarge, which the server
// finds before a body reaches Decode. ProblemCount sizes arrays indexed by
// LoginProblem.
const (
	LoginOK LoginProblem = iota
	ProblemEmptyBody
	ProblemInvalidUTF8
	ProblemNotJSON
	ProblemTooDeep
	ProblemNotObject
	ProblemTrailingData
	ProblemUsernameMissing
	ProblemUsernameNotString
	ProblemUsernameEmpty
	ProblemUsernameTooLong
	ProblemPasswordMissing
	ProblemPasswordNotString
	ProblemPasswordEmpty
	ProblemIPNotString
	ProblemIPInvalid
	ProblemBodyTooLarge
	ProblemCount
)

// problemDescriptions are the sentences a north server reads in the
// "description" field. ProblemBodyTooLarge is filled in per server because it
// names the configured limit.
var problemDescriptions = [ProblemCount]string{
	ProblemEmptyBody:         "request body is empty; send a JSON object with username and password",
	ProblemInvalidUTF8:       "request body is not valid UTF-8",
	ProblemNotJSON:           "request body is not valid JSON",
	ProblemTooDeep:           "request body nests JSON deeper than 32 levels",
	ProblemNotObject:         "request body must be a JSON object",
	ProblemTrailingData:      "request body has data after the JSON object",
	ProblemUsernameMissing:   "username is required",
	ProblemUsernameNotString: "username must be a string",
	ProblemUsernameEmpty:     "username must not be empty",
	ProblemUsernameTooLong:   "username must be at most 256 bytes",
	ProblemPasswordMissing:   "password is required",
	ProblemPasswordNotString: "password must be a string",
	ProblemPasswordEmpty:     "password must not be empty",
	ProblemIPNotString:       "ip must be a string",
	ProblemIPInvalid:         "ip is not a valid IP address",
}

// Reason is p's label in metrics: "not_json", "username_missing"…
func (p LoginProblem) Reason() string { return problemReasons[p] }

// problemReasons label login rejections in metrics.
var problemReasons = [ProblemCount]string{
	ProblemEmptyBody:         "empty_body",
	ProblemInvalidUTF8:       "invalid_utf8",
	ProblemNotJSON:           "not_json",
	ProblemTooDeep:           "too_deep",
	ProblemNotObject:         "not_object",
	ProblemTrailingData:      "trailing_data",
	ProblemUsernameMissing:   "username_missing",
	ProblemUsernameNotString: "username_not_string",
	ProblemUsernameEmpty:     "username_empty",
	ProblemUsernameTooLong:   "username_too_long",
	ProblemPasswordMissing:   "password_missing",
	ProblemPasswordNotString: "password_not_string",
	ProblemPasswordEmpty:     "password_empty",
	ProblemIPNotString:       "ip_not_string",
	ProblemIPInvalid:         "ip_invalid",
	ProblemBodyTooLarge:      "body_too_large",
}

const (
	// maxJSONDepth bounds nesting so a body of 64 KiB of '[' cannot
	// recurse deeply; a login object needs a depth of 1.
	maxJSONDepth = 32
	// MaxUsernameLen bounds what the registry keeps per north server, so
	// that registry-max entries bound its memory. A longer username is
	// refused at login, and in the users file.
	MaxUsernameLen = 256
	// maxIPLen is the longest textual IP address ParseIP accepts.
	maxIPLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
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
	usernameKeep = MaxUsernameLen + 1
	ipKeep       = maxIPLen + 1
)

// LoginRequest is one decoded login body. The server pools them, so they own
// only small buffers: username and ip are copied (unescaped, cut one byte
// past their limits) into buffers the LoginRequest reuses, and the password
// is never copied at all. It is a view of the body, valid only until the
// handler returns, and Reset drops it. Its fields mean what they say only
// once Decode has returned LoginOK.
type LoginRequest struct {
	// Username is unescaped, 1 to MaxUsernameLen bytes.
	Username []byte
	// Password is the password's raw JSON string contents in the request
	// body, still escaped and never empty; AppendPassword decodes it.
	Password []byte
	// Addr is the ip field's address, or the zero Addr when the body
	// has no ip.
	Addr netip.Addr

	ip           []byte
	usernameKind fieldKind
	passwordKind fieldKind
	ipKind       fieldKind
}

// Reset drops what lr holds of the last body, the view of the password
// with the rest, and keeps its buffers for the next.
func (lr *LoginRequest) Reset() {
	lr.Username = lr.Username[:0]
	lr.Password = nil
	lr.ip = lr.ip[:0]
	lr.usernameKind, lr.passwordKind, lr.ipKind = fieldMissing, fieldMissing, fieldMissing
	lr.Addr = netip.Addr{}
}

// AppendPassword appends the decoded form of raw, a LoginRequest's
// Password, to dst. The decoder leaves the password as the body has it so
// that it is never copied; the rare password with escapes is decoded only
// to be checked. The caller owns dst and must clear it once the password
// has been checked.
func AppendPassword(dst, raw []byte) []byte {
	dst, _ = appendUnescaped(dst, raw, len(raw))
	return dst
}

// Decode checks body against the login contract and fills lr. It returns
// LoginOK or the first problem found: syntax problems before field problems,
// and fields in the order username, password, ip.
func (lr *LoginRequest) Decode(body []byte) LoginProblem {
	lr.Reset()
	d := jsonScanner{buf: body}
	d.skipSpace()
	if d.pos == len(body) {
		return ProblemEmptyBody
	}
	if !utf8.Valid(body) {
		return ProblemInvalidUTF8
	}
	if body[d.pos] != '{' {
		// Report a well-formed non-object (array, string, number…) as
		// such, and anything else as not JSON.
		if p := d.value(1); p != LoginOK {
			return p
		}
		if d.skipSpace(); d.pos != len(body) {
			return ProblemNotJSON
		}
		return ProblemNotObject
	}
	if p := d.loginObject(lr); p != LoginOK {
		return p
	}
	d.skipSpace()
	if d.pos != len(body) {
		return ProblemTrailingData
	}
	return lr.validate()
}

func (lr *LoginRequest) validate() LoginProblem {
	switch {
	case lr.usernameKind == fieldMissing:
		return ProblemUsernameMissing
	case lr.usernameKind == fieldOther:
		return ProblemUsernameNotString
	case len(lr.Username) == 0:
		return ProblemUsernameEmpty
	case len(lr.Username) > MaxUsernameLen:
		return ProblemUsernameTooLong
	case lr.passwordKind == fieldMissing:
		return ProblemPasswordMissing
	case lr.passwordKind == fieldOther:
		return ProblemPasswordNotString
	case len(lr.Password) == 0:
		// Raw and decoded are empty together: every escape decodes to
		// at least one byte.
		return ProblemPasswordEmpty
	case lr.ipKind == fieldOther:
		return ProblemIPNotString
	case lr.ipKind == fieldString:
		addr, ok := ParseIP(lr.ip)
		if !ok {
			return ProblemIPInvalid
		}
		lr.Addr = addr
	}
	return LoginOK
}

// ParseIP accepts an IPv4 or IPv6 address without a zone, as the login's ip
// field and the client address headers of trusted proxies hold it. IPv4-mapped
// IPv6 addresses are recorded as the IPv4 address they map, so that an
// address has one form however it was written. It allocates nothing for an address it accepts.
func ParseIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > maxIPLen {
		return netip.Addr{}, false
	}
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	// The string shares b's memory only for the call: a parsed Addr
	// without a zone keeps nothing of it, and errors are dropped.
	addr, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// parseIPv4 parses dotted-quad IPv4 as netip.ParseAddr does (four decimal
// fields of 0-255, no leading zeros) in a third of its time; anything else
// is left to netip.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	field, digits, val := 0, 0, 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && val == 0 {
				return netip.Addr{}, false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.' && digits > 0 && field < 3:
			ip[field] = byte(val)
			field, digits, val = field+1, 0, 0
		default:
			return netip.Addr{}, false
		}
		if i == len(b)-1 && (field != 3 || digits == 0) {
			return netip.Addr{}, false
		}
	}
	ip[3] = byte(val)
	return netip.AddrFrom4(ip), true
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
func (lr *LoginRequest) setString(f loginField, raw []byte) {
	switch f {
	case fieldUsername:
		lr.Username, _ = appendUnescaped(lr.Username[:0], raw, usernameKeep)
		lr.usernameKind = fieldString
	case fieldPassword:
		lr.Password = raw
		lr.passwordKind = fieldString
	case fieldIP:
		lr.ip, _ = appendUnescaped(lr.ip[:0], raw, ipKeep)
		lr.ipKind = fieldString
	}
}

// setOther records that field f holds a value other than a string.
func (lr *LoginRequest) setOther(f loginField) {
	switch f {
	case fieldUsername:
		lr.Username, lr.usernameKind = lr.Username[:0], fieldOther
	case fieldPassword:
		lr.Password, lr.passwordKind = nil, fieldOther
	case fieldIP:
		lr.ip, lr.ipKind = lr.ip[:0], fieldOther
	}
}

// loginObject scans the top-level object, which starts at d.pos.
func (d *jsonScanner) loginObject(lr *LoginRequest) LoginProblem {
	if d.openEmpty('}') {
		return LoginOK
	}
	for {
		key, ok := d.objectKey()
		if !ok || d.pos >= len(d.buf) {
			return ProblemNotJSON
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
				return ProblemNotJSON
			}
			lr.setString(f, d.buf[start:start+n])
		} else {
			if p := d.value(2); p != LoginOK {
				return p
			}
			lr.setOther(f)
		}
		if more, ok := d.nextMember('}'); !ok {
			return ProblemNotJSON
		} else if !more {
			return LoginOK
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
func (d *jsonScanner) value(depth int) LoginProblem {
	if d.pos >= len(d.buf) {
		return ProblemNotJSON
	}
	switch c := d.buf[d.pos]; {
	case c == '"':
		if _, ok := d.rawString(); !ok {
			return ProblemNotJSON
		}
		return LoginOK
	case c == '{' || c == '[':
		if depth > maxJSONDepth {
			return ProblemTooDeep
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
	return ProblemNotJSON
}

// container scans an object or array whose opening bracket is at d.pos.
func (d *jsonScanner) container(depth int) LoginProblem {
	isObject := d.buf[d.pos] == '{'
	closer := byte(']')
	if isObject {
		closer = '}'
	}
	if d.openEmpty(closer) {
		return LoginOK
	}
	for {
		if isObject {
			if _, ok := d.objectKey(); !ok {
				return ProblemNotJSON
			}
		}
		if p := d.value(depth + 1); p != LoginOK {
			return p
		}
		if more, ok := d.nextMember(closer); !ok {
			return ProblemNotJSON
		} else if !more {
			return LoginOK
		}
	}
}

func (d *jsonScanner) literal(word string) LoginProblem {
	if len(d.buf)-d.pos < len(word) || string(d.buf[d.pos:d.pos+len(word)]) != word {
		return ProblemNotJSON
	}
	d.pos += len(word)
	return LoginOK
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *jsonScanner) number() LoginProblem {
	if d.buf[d.pos] == '-' {
		d.pos++
	}
	if d.pos >= len(d.buf) {
		return ProblemNotJSON
	}
	if d.buf[d.pos] == '0' {
		d.pos++
	} else if !d.digits() {
		return ProblemNotJSON
	}
	if d.pos < len(d.buf) && d.buf[d.pos] == '.' {
		d.pos++
		if !d.digits() {
			return ProblemNotJSON
		}
	}
	if d.pos < len(d.buf) && (d.buf[d.pos] == 'e' || d.buf[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.buf) && (d.buf[d.pos] == '+' || d.buf[d.pos] == '-') {
			d.pos++
		}
		if !d.digits() {
			return ProblemNotJSON
		}
	}
	return LoginOK
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

// hex4 decodes the four hex digits of a \u escape, which JSON takes in
// either case.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		if c >= 'A' && c <= 'F' {
			c += 'a' - 'A'
		}
		v, ok := lowerHexDigit(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
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
