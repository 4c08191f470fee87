package redis

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	"northd/internal/push"
	"northd/internal/push/pushtest"
	"northd/internal/redisconn"
	"northd/internal/testdeps"
)

const (
	keyA = "1111111111111111111111111111111111111111111111111111111111111111"
	keyB = "2222222222222222222222222222222222222222222222222222222222222222"
)

func openRedis(t *testing.T) (*testdeps.Redis, *redisconn.Conn) {
	t.Helper()
	redis := testdeps.StartRedis(t)
	c, err := redisconn.Open(redis.URL(), metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return redis, c
}

func mustKeys(t *testing.T, text string) *SecretKeys {
	t.Helper()
	k, err := ParseSecretKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The Redis store passes the suite the memory store passes, against a
// real redis-server, with its secrets in clear and sealed: each case has a
// subsystem of its own.
func TestConformance(t *testing.T) {
	_, c := openRedis(t)
	n := 0
	for name, keys := range map[string]*SecretKeys{"clear": nil, "sealed": mustKeys(t, keyA)} {
		t.Run(name, func(t *testing.T) {
			pushtest.Run(t, func(*testing.T) push.Store {
				n++
				return New(c, "case"+strconv.Itoa(n), 30*time.Second, keys)
			})
		})
	}
}

// With -push-secret-key-file, Redis holds no secret in clear: a store
// with the key reads it, one that has it second (a new key put first)
// still does, and one without it says which key it lacks.
func TestSecretsAreSealedInRedis(t *testing.T) {
	redis, c := openRedis(t)
	ctx := context.Background()
	secret := []byte("0123456789abcdef0123456789abcdef")
	rec := func(id string) *push.Record {
		return &push.Record{ID: id, Username: "north-1", IP: netip.MustParseAddr("192.0.2.1"), URL: "http://192.0.2.1/hook",
			Created: time.Unix(1e9, 0).UTC(), Secrets: []push.Secret{{Key: secret}}}
	}
	sealing := New(c, "nms", time.Minute, mustKeys(t, keyA))
	if err := sealing.Create(ctx, rec("sub_sealed"), events.ID{}, 10, 10); err != nil {
		t.Fatal(err)
	}
	raw := redis.CLI("HGET", "northd:{nms}:subs", "sub_sealed")
	if strings.Contains(raw, base64.StdEncoding.EncodeToString(secret)) || strings.Contains(raw, string(secret)) || !strings.Contains(raw, `"sealed":"`) {
		t.Fatalf("Redis holds %s: the secret in clear, or not marked sealed", raw)
	}
	for name, keys := range map[string]*SecretKeys{"the key": mustKeys(t, keyA), "a new key first": mustKeys(t, "# new\n"+keyB+"\n\n"+keyA+"\n")} {
		list, err := New(c, "nms", time.Minute, keys).List(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("%s: List %d records, %v", name, len(list), err)
		}
		for _, r := range list {
			if len(r.Secrets) != 1 || !bytes.Equal(r.Secrets[0].Key, secret) {
				t.Errorf("%s: %s's secret read as %q", name, r.ID, r.Secrets)
			}
		}
	}
	for name, keys := range map[string]*SecretKeys{"no key": nil, "another key": mustKeys(t, keyB)} {
		_, err := New(c, "nms", time.Minute, keys).List(ctx)
		if err == nil || !strings.Contains(err.Error(), "sub_sealed's secrets are sealed by key ") || !strings.Contains(err.Error(), "give every instance the same keys") {
			t.Errorf("%s: List %v, want the missing key named", name, err)
		}
	}
	// A sealed secret moved to another subscription does not open.
	moved := strings.Replace(raw, `"id":"sub_sealed"`, `"id":"sub_moved"`, 1)
	redis.CLI("HDEL", "northd:{nms}:subs", "sub_sealed")
	redis.CLI("HSET", "northd:{nms}:subs", "sub_moved", moved)
	if _, err := sealing.List(ctx); err == nil || !strings.Contains(err.Error(), "sub_moved has a secret sealed by key") || !strings.Contains(err.Error(), "does not open") {
		t.Errorf("a sealed secret under another id: %v", err)
	}
}

// Whoever can write Redis cannot point a sealed subscription elsewhere:
// its url, username, ip and types are sealed with its secrets, so a
// record with any of them rewritten does not open.
func TestSealBindsTheWholeSubscription(t *testing.T) {
	redis, c := openRedis(t)
	ctx := context.Background()
	r := &push.Record{ID: "sub_1", Username: "north-1", IP: netip.MustParseAddr("192.0.2.1"), URL: "http://192.0.2.1/hook",
		Types: []string{"alarm.raised"}, Secrets: []push.Secret{{Key: []byte("0123456789abcdef0123456789abcdef")}}}
	if err := New(c, "nms", time.Minute, mustKeys(t, keyA)).Create(ctx, r, events.ID{}, 10, 10); err != nil {
		t.Fatal(err)
	}
	raw := redis.CLI("HGET", "northd:{nms}:subs", "sub_1")
	for _, c2 := range []struct{ field, from, to string }{
		{"none", "", ""},
		{"url", `"url":"http://192.0.2.1/hook"`, `"url":"http://192.0.2.1:22/hook"`},
		{"username", `"username":"north-1"`, `"username":"north-2"`},
		{"ip", `"ip":"192.0.2.1"`, `"ip":"192.0.2.2"`},
		{"types", `"types":["alarm.raised"]`, `"types":[]`},
		{"types", `"types":["alarm.raised"]`, `"types":["alarm.raised","alarm.cleared"]`},
	} {
		rewritten := strings.Replace(raw, c2.from, c2.to, 1)
		if rewritten == raw && c2.field != "none" {
			t.Fatalf("the record %s holds no %s", raw, c2.from)
		}
		redis.CLI("HSET", "northd:{nms}:subs", "sub_1", rewritten)
		redis.CLI("INCR", "northd:{nms}:subs:version")
		list, err := New(c, "nms", time.Minute, mustKeys(t, keyA)).List(ctx)
		switch {
		case c2.field == "none" && (err != nil || len(list) != 1 || list[0].URL != "http://192.0.2.1/hook"):
			t.Errorf("the record as sealed: %v %v", list, err)
		case c2.field != "none" && (err == nil || !strings.Contains(err.Error(), "sub_1 has a secret sealed by key ") || !strings.Contains(err.Error(), "does not open") ||
			!strings.Contains(err.Error(), "redis-cli HDEL 'northd:{nms}:subs' sub_1;")):
			t.Errorf("its %s rewritten in Redis (%s): List %v %v, want it refused", c2.field, c2.to, list, err)
		}
	}
}

// With -push-secret-key-file, a record in clear is refused, whoever wrote
// it, and so is one sealed by a northd that bound its secrets to the id
// alone: the error says what to do.
func TestUnboundRecordsAreRefusedWithKeys(t *testing.T) {
	redis, c := openRedis(t)
	ctx := context.Background()
	r := &push.Record{ID: "sub_1", Username: "north-1", IP: netip.MustParseAddr("192.0.2.1"), URL: "http://192.0.2.1/hook",
		Secrets: []push.Secret{{Key: []byte("0123456789abcdef0123456789abcdef")}}}
	if err := New(c, "nms", time.Minute, nil).Create(ctx, r, events.ID{}, 10, 10); err != nil {
		t.Fatal(err)
	}
	keyed := New(c, "nms", time.Minute, mustKeys(t, keyA))
	_, err := keyed.List(ctx)
	if err == nil || !strings.Contains(err.Error(), "webhook subscription sub_1 is kept in clear in Redis while -push-secret-key-file is given") ||
		!strings.Contains(err.Error(), "subscribe again") {
		t.Errorf("a record in clear, with a key: %v, want it refused", err)
	}
	// As the northd before this one sealed it: the record's id alone as
	// the additional data, and no seal version.
	k := mustKeys(t, keyA).keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	old := fmt.Sprintf(`{"id":"sub_1","username":"north-1","ip":"192.0.2.1","url":"http://192.0.2.1/hook","types":null,"created":"0001-01-01T00:00:00Z","secrets":[{"key":%q}],"disabled":false,"sealed":%q}`,
		base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte("0123456789abcdef0123456789abcdef"), []byte("sub_1"))), k.id)
	redis.CLI("HSET", "northd:{nms}:subs", "sub_1", old)
	redis.CLI("INCR", "northd:{nms}:subs:version")
	_, err = keyed.List(ctx)
	if err == nil || !strings.Contains(err.Error(), "sub_1 was sealed by an earlier northd, which bound its secrets to its id alone") ||
		!strings.Contains(err.Error(), "subscribe again") {
		t.Errorf("a record sealed to its id alone: %v, want it refused", err)
	}
}

func TestParseSecretKeys(t *testing.T) {
	for _, c := range []struct {
		text string
		keys int
		want string // the error; "" when accepted
	}{
		{keyA, 1, ""},
		{"  " + keyA + "  \n# old\n" + keyB, 2, ""},
		{"", 0, "it holds no key: put one per line (openssl rand -hex 32 makes one)"},
		{"# only a comment\n", 0, "it holds no key: put one per line (openssl rand -hex 32 makes one)"},
		{keyA[:62], 0, "line 1 is not a key of 64 hex digits (openssl rand -hex 32 makes one)"},
		{keyA + "\n" + strings.Repeat("g", 64), 0, "line 2 is not a key of 64 hex digits (openssl rand -hex 32 makes one)"},
		{keyA + "00", 0, "line 1 is not a key of 64 hex digits (openssl rand -hex 32 makes one)"},
	} {
		k, err := ParseSecretKeys(c.text)
		switch {
		case err != nil && err.Error() != c.want:
			t.Errorf("ParseSecretKeys(%q) = %q, want %q", c.text, err, c.want)
		case err == nil && c.want != "":
			t.Errorf("ParseSecretKeys(%q) accepted, want %q", c.text, c.want)
		case err == nil && len(k.keys) != c.keys:
			t.Errorf("ParseSecretKeys(%q): %d keys, want %d", c.text, len(k.keys), c.keys)
		}
	}
}

// Whatever the file holds, ParseSecretKeys refuses it or gives keys that
// seal a secret the same keys open again.
func FuzzParseSecretKeys(f *testing.F) {
	f.Add(keyA)
	f.Add("#\n" + keyB + "\n" + keyA)
	f.Add("zz")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseSecretKeys(text)
		if err != nil {
			return
		}
		r := &push.Record{ID: "sub_1", Secrets: []push.Secret{{Key: []byte("secret")}}}
		s := k.seal(r)
		got, err := k.open(&s)
		if err != nil || string(got.Secrets[0].Key) != "secret" || string(r.Secrets[0].Key) != "secret" {
			t.Fatalf("sealed and opened: %v %v", got, err)
		}
	})
}

// hvalsCalls is how many times Redis has run HVALS.
func hvalsCalls(t *testing.T, redis *testdeps.Redis) int {
	t.Helper()
	for _, line := range strings.Split(redis.CLI("INFO", "commandstats"), "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_hvals:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// Every instance lists the subscriptions every second: it reads them all
// again only after one of them changed, on whichever instance.
func TestListReadsTheRecordsOnlyAfterAChange(t *testing.T) {
	redis, c := openRedis(t)
	ctx := context.Background()
	a := New(c, "nms", time.Minute, nil)
	b := New(c, "nms", time.Minute, nil)
	rec := &push.Record{ID: "sub_1", Username: "north-1", IP: netip.MustParseAddr("192.0.2.1"), URL: "http://192.0.2.1/hook",
		Secrets: []push.Secret{{Key: []byte("k1")}}}
	if err := b.Create(ctx, rec, events.ID{}, 10, 10); err != nil {
		t.Fatal(err)
	}
	list := func(want string) {
		t.Helper()
		got, err := a.List(ctx)
		var keys []string
		for _, r := range got {
			keys = append(keys, r.ID+"="+string(r.Secrets[0].Key))
		}
		if err != nil || strings.Join(keys, " ") != want {
			t.Fatalf("List: %q %v, want %q", keys, err, want)
		}
	}
	list("sub_1=k1")
	before := hvalsCalls(t, redis)
	for range 5 {
		list("sub_1=k1")
	}
	if n := hvalsCalls(t, redis) - before; n != 0 {
		t.Errorf("5 Lists with nothing changed read the records %d times, want 0", n)
	}
	rec.Secrets[0].Key = []byte("k2")
	if ok, err := b.Update(ctx, rec); !ok || err != nil {
		t.Fatal(ok, err)
	}
	list("sub_1=k2")
	if ok, err := b.Delete(ctx, "sub_1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	list("")
	if n := hvalsCalls(t, redis) - before; n != 2 {
		t.Errorf("after an update and a delete the records were read %d times, want 2", n)
	}
}

// A Redis that came back with older data (a snapshot, an AOF that lost
// its last second) holds a cursor behind the one its holder moved it to:
// the holder's goes on from its own, rather than posting again what was
// taken, and one whose cursor is behind the stored one still moves
// nothing.
func TestACursorRedisLostIsTheHolders(t *testing.T) {
	redis, c := openRedis(t)
	ctx := context.Background()
	s := New(c, "nms", time.Minute, nil)
	e := func(n uint64) events.ID { return events.ID{Epoch: "e", Seq: n} }
	r := &push.Record{ID: "sub_1", Username: "north-1", IP: netip.MustParseAddr("192.0.2.1"), URL: "http://192.0.2.1/hook", Created: time.Unix(1e9, 0).UTC()}
	if err := s.Create(ctx, r, e(1), 10, 10); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Lease(ctx, "sub_1", "a", time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := s.Advance(ctx, "sub_1", "a", e(1), e(5)); !ok {
		t.Fatal("Advance by the holder refused")
	}
	// As a restore from a snapshot taken at e-2, with a batch to e-3
	// recorded then.
	redis.CLI("SET", "northd:{nms}:sub:sub_1:cursor", "e-2")
	redis.CLI("SET", "northd:{nms}:sub:sub_1:pending", "e-3")
	if _, ok, _ := s.Pending(ctx, "sub_1", "a", e(1), e(4)); ok {
		t.Error("a batch fixed from e-1, behind the stored e-2")
	}
	if end, ok, err := s.Pending(ctx, "sub_1", "a", e(5), e(7)); !ok || err != nil || end != e(7) {
		t.Errorf("Pending from the holder's e-5: %v %v %v, want e-7: the e-3 recorded for e-2 is of a batch taken since", end, ok, err)
	}
	if c, pending, _, _ := s.Cursor(ctx, "sub_1"); c != e(5) || pending != e(7) {
		t.Errorf("cursor %v, pending %v; want e-5 (the holder's) and e-7", c, pending)
	}
	redis.CLI("SET", "northd:{nms}:sub:sub_1:cursor", "e-2")
	if ok, _ := s.Advance(ctx, "sub_1", "a", e(1), e(3)); ok {
		t.Error("a cursor moved from e-1, behind the stored e-2")
	}
	if ok, _ := s.Advance(ctx, "sub_1", "a", e(7), e(9)); !ok {
		t.Error("the holder's cursor, ahead of the one Redis restored, did not move")
	}
	if c, _, _, _ := s.Cursor(ctx, "sub_1"); c != e(9) {
		t.Errorf("cursor %v, want e-9", c)
	}
}
