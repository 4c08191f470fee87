// Package webhooks is what every webhook northd sends needs, apart from
// northd itself: signing as the Standard Webhooks specification says
// (standardwebhooks.com), where a webhook may go (the operator's
// -push-allow, checked on the address actually dialled) and the client
// that goes there, and when to try again.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret: "whsec_" and the key in
// base64.
const secretPrefix = "whsec_"

// NewSecret is a new secret: "whsec_" and 32 random bytes in base64.
func NewSecret() (string, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", err
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// ParseSecret is the key of a secret NewSecret made (or another sender's of
// the same form, 24 to 64 bytes).
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("a webhook secret starts with %q", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("a webhook secret is %q and base64 after it: %v", secretPrefix, err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("a webhook secret's key is 24 to 64 bytes, not %d", len(key))
	}
	return key, nil
}

// Sign appends to dst one signature of a message: "v1," and the base64
// HMAC-SHA256, under key, of "msgID.timestamp.body".
func Sign(dst, key []byte, msgID string, timestamp int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	var ts [24]byte
	mac.Write(strconv.AppendInt(append(ts[:0], '.'), timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	var sum [sha256.Size]byte
	dst = append(dst, "v1,"...)
	return base64.StdEncoding.AppendEncode(dst, mac.Sum(sum[:0]))
}

// SignatureHeader appends the webhook-signature header's value: a
// signature under each key, space-separated (two during a secret's
// rotation, so that a receiver holding either checks it).
func SignatureHeader(dst []byte, keys [][]byte, msgID string, timestamp int64, body []byte) []byte {
	for i, key := range keys {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = Sign(dst, key, msgID, timestamp, body)
	}
	return dst
}
