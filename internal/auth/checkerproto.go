package auth

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/crypto/argon2"
)

// The password checker's protocol, between northd and the process it
// starts with `northd check-passwords` (see checker.go), over the child's
// stdin and stdout.
//
// A request is a frame: a 4-byte big-endian length of what follows, then
// an 8-byte id, a 2-byte length of the encoded hash, the encoded hash (the
// users file's own form: bcrypt's $2b$… or argon2id's PHC string), and the
// password, all the rest. The hash travels with every request, so that a
// reload of the users file needs nothing of the child.
//
// A reply is a fixed 9 bytes: the request's id and a verdict. The child's
// first reply, before any request, is its hello: id 0 and the protocol
// version, so that northd knows the child is up and speaks its language.
const (
	checkFrameHeaderLen = 4
	checkRequestFixed   = 8 + 2 // id and hash length
	checkReplyLen       = 8 + 1

	// maxCheckedPassword is the longest password sent for a check; a
	// longer one cannot match (northd hash-password reads 4096 bytes at
	// most, htpasswd fewer) and is refused without one.
	maxCheckedPassword = 64 << 10
	// maxEncodedHash bounds an encoded hash: argon2id's PHC string with
	// the largest parameters, salt and key northd accepts is far shorter.
	maxEncodedHash = 1 << 10
	// maxCheckFrame bounds a request frame, so that a garbled stream
	// cannot make the child allocate without limit.
	maxCheckFrame = checkRequestFixed + maxEncodedHash + maxCheckedPassword

	checkProtocolVersion = 1
)

// checkVerdict is the child's answer to one request, and, past
// verdictRefused, what northd answers itself without one.
type checkVerdict uint8

const (
	verdictMismatch checkVerdict = iota
	verdictMatch
	verdictRefused // the child could not read the hash: a bug, so fail closed
	verdictBusy    // northd's queue of checks is full
	verdictDown    // the child is not running (restarting, or northd stopping)
)

var (
	errCheckFrameTooLarge = errors.New("password check frame larger than the protocol allows")
	errCheckFrameShort    = errors.New("password check frame shorter than its header")
)

// appendCheckRequest appends the frame asking the child whether password
// matches hash. The caller clears it once written: it holds the password.
func appendCheckRequest(dst []byte, id uint64, hash *passwordHash, password []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // the length, filled in below
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = append(dst, 0, 0)
	hashStart := len(dst)
	dst = appendEncodedHash(dst, hash)
	binary.BigEndian.PutUint16(dst[hashStart-2:], uint16(len(dst)-hashStart))
	dst = append(dst, password...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-checkFrameHeaderLen))
	return dst
}

// appendEncodedHash appends hash in the users file's form, which
// parsePasswordHash reads back.
func appendEncodedHash(dst []byte, h *passwordHash) []byte {
	if h.bcrypt != nil {
		return append(dst, h.bcrypt...)
	}
	dst = append(dst, "$argon2id$v="...)
	dst = strconv.AppendUint(dst, argon2.Version, 10)
	dst = append(dst, "$m="...)
	dst = strconv.AppendUint(dst, uint64(h.argonMemory), 10)
	dst = append(dst, ",t="...)
	dst = strconv.AppendUint(dst, uint64(h.argonTime), 10)
	dst = append(dst, ",p="...)
	dst = strconv.AppendUint(dst, uint64(h.argonThreads), 10)
	dst = append(dst, '$')
	dst = base64.RawStdEncoding.AppendEncode(dst, h.salt)
	dst = append(dst, '$')
	return base64.RawStdEncoding.AppendEncode(dst, h.key)
}

// readCheckFrame reads one request frame's body (what follows the length)
// from r into buf, grown as needed, and returns it.
func readCheckFrame(r io.Reader, buf []byte) ([]byte, error) {
	var header [checkFrameHeaderLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return buf[:0], err
	}
	n := binary.BigEndian.Uint32(header[:])
	if n > maxCheckFrame {
		return buf[:0], fmt.Errorf("%w: %d bytes", errCheckFrameTooLarge, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// parseCheckRequest splits a frame's body into its parts, which point into
// frame.
func parseCheckRequest(frame []byte) (id uint64, hash, password []byte, err error) {
	if len(frame) < checkRequestFixed {
		return 0, nil, nil, errCheckFrameShort
	}
	id = binary.BigEndian.Uint64(frame)
	n := int(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[checkRequestFixed:]
	if n > len(rest) || n > maxEncodedHash {
		return 0, nil, nil, fmt.Errorf("password check frame: a hash of %d bytes in %d", n, len(rest))
	}
	return id, rest[:n], rest[n:], nil
}

// appendCheckReply appends the reply to request id.
func appendCheckReply(dst []byte, id uint64, v checkVerdict) []byte {
	return append(binary.BigEndian.AppendUint64(dst, id), byte(v))
}

// parseCheckReply reads a reply of checkReplyLen bytes.
func parseCheckReply(b []byte) (id uint64, v checkVerdict) {
	return binary.BigEndian.Uint64(b), checkVerdict(b[8])
}
