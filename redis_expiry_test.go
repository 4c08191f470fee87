package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// A token in Redis stops verifying once -token-ttl has passed, on every
// instance, and Redis's own expiry removes it: nothing is left to present.
func TestRedisTokenExpires(t *testing.T) {
	redis := testdeps.StartRedis(t)
	a, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-token-ttl", "1s")
	b, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-token-ttl", "1s")
	client := clientFrom("127.0.0.1")
	token := loginToken(t, client, "http://"+a[0], `{"username":"north","password":"pw","ip":"192.0.2.70"}`)
	if strings.TrimSpace(redis.CLI("EXISTS", "northd:{alarms}:tok:"+tokenDigestOf(t, token))) != "1" {
		t.Fatal("the token's record is not in Redis after its login")
	}
	// It may have expired already on a slow machine; only its end is
	// waited for.
	v := call(t, client, "GET", "http://"+b[0]+"/north/verify", token, "")
	if v.status == 200 && !strings.HasSuffix(v.body, `, "expires_in": 1}`) && !strings.HasSuffix(v.body, `, "expires_in": 0}`) {
		t.Errorf("verify just after the login: %q, want expires_in 1 or 0", v.body)
	}
	testdeps.WaitFor(t, "the token to stop verifying", func() bool {
		v = call(t, client, "GET", "http://"+b[0]+"/north/verify", token, "")
		return v.status != 200
	})
	// Redis drops the record at the expiry itself, so verify can tell
	// only within a millisecond or so that it expired rather than never
	// existed; both are code 2.
	if v.status != 401 || (v.body != `{"code": 2, "description": "the token has expired; log in again"}` &&
		v.body != `{"code": 2, "description": "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again"}`) {
		t.Errorf("verify after -token-ttl: %d %q", v.status, v.body)
	}
	if v := call(t, client, "GET", "http://"+a[0]+"/north/verify", token, ""); v.status != 401 {
		t.Errorf("verify on the issuing instance after -token-ttl: %d %q", v.status, v.body)
	}
	testdeps.WaitFor(t, "Redis to drop the token's record", func() bool {
		return strings.TrimSpace(redis.CLI("EXISTS", "northd:{alarms}:tok:"+tokenDigestOf(t, token))) == "0"
	})
}

// tokenDigestOf is the store's key for a token given in hex: the hex
// SHA-256 of its 16 bytes.
func tokenDigestOf(t *testing.T, hexToken string) string {
	t.Helper()
	b, err := hex.DecodeString(hexToken)
	if err != nil || len(b) != 16 {
		t.Fatalf("token %q: %v", hexToken, err)
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}
