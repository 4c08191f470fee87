package main

import (
	"fmt"
	"io"
	"net/netip"
	"northd/internal/testdeps"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// tokenStore is the memory registry or the Redis store, as the tests of
// both see them.
type tokenStore struct {
	login   func(ip netip.Addr, username string, token [16]byte, takeover bool) ([16]byte, bool)
	valid   func(token [16]byte) bool
	servers func() int // north servers held
}

func memoryTokenStore(max, maxPerUser int) tokenStore {
	r := newRegistry(max, maxPerUser, time.Hour)
	return tokenStore{
		login: func(ip netip.Addr, username string, token [16]byte, takeover bool) ([16]byte, bool) {
			return r.login(ip, []byte(username), token, time.Now(), takeover)
		},
		valid: func(token [16]byte) bool {
			_, _, _, result := r.verify(token, time.Now().UnixNano(), nil)
			return result == tokenValid
		},
		servers: r.count,
	}
}

func redisTokenStore(t *testing.T, max, maxPerUser int) (tokenStore, *testdeps.Redis) {
	redis := testdeps.StartRedis(t)
	cfg := testConfig(t, "-store", redis.URL(), "-store-timeout", "30s", "-registry-max", fmt.Sprint(max), "-max-ips-per-user", fmt.Sprint(maxPerUser))
	s, err := newRedisStore(cfg.Store, cfg, metrics.NewSet(), newLogger(io.Discard, "error", "text"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	s.userMax = maxPerUser // as with -users
	k := keysFor("alarms")
	return tokenStore{
		login: func(ip netip.Addr, username string, token [16]byte, takeover bool) ([16]byte, bool) {
			ok, err := s.login(k, ip, []byte(username), token, takeover)
			if err != nil {
				t.Fatal(err)
			}
			return token, ok
		},
		valid: func(token [16]byte) bool {
			_, _, _, result, err := s.verify(k, token, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return result == tokenValid
		},
		servers: func() int {
			var n int
			fmt.Sscan(redis.CLI("ZCARD", k.servers), &n)
			return n
		},
	}, redis
}

func tokenN(n int) [16]byte {
	return [16]byte{0: byte(n), 1: byte(n >> 8), 2: byte(n >> 16), 3: 0x5a, 6: 0x40}
}

// One username holds at most -max-ips-per-user north servers: past it,
// its least recently seen goes with its token, and no other username's.
func TestMaxIPsPerUser(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			var s tokenStore
			if store == "memory" {
				s = memoryTokenStore(100, 3)
			} else {
				s, _ = redisTokenStore(t, 100, 3)
			}
			other, _ := s.login(ipN(1000), "other", tokenN(1000), false)
			var tokens [5][16]byte
			for i := 1; i <= 3; i++ {
				tokens[i], _ = s.login(ipN(i), "north", tokenN(i), false)
			}
			tokens[1], _ = s.login(ipN(1), "north", tokenN(11), false) // 1 is now its newest, 2 its oldest
			tokens[4], _ = s.login(ipN(4), "north", tokenN(4), false)
			for i, want := range []bool{1: true, 2: false, 3: true, 4: true} {
				if i > 0 && s.valid(tokens[i]) != want {
					t.Errorf("north's token on %v: valid %v, want %v", ipN(i), !want, want)
				}
			}
			if !s.valid(other) {
				t.Error("another username's token ended")
			}
			if n := s.servers(); n != 4 {
				t.Errorf("%d north servers held, want 4: north's 3 and other's", n)
			}
			// The forgotten ip is free: another username takes it at once.
			if _, ok := s.login(ipN(2), "other", tokenN(2000), false); !ok {
				t.Error("the ip north lost past its bound is still held")
			}
		})
	}
}

// The eviction flood of issue 14: one valid user logging in with a new ip
// per request pushed every other north server out at -registry-max. Now
// it pushes out only its own, with either store.
func TestOneUserWithManyIPsEvictsNoOtherUser(t *testing.T) {
	const others, flood = 1000, 100000
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			var s tokenStore
			if store == "memory" {
				s = memoryTokenStore(65536, 16)
			} else {
				var redis *testdeps.Redis
				s, redis = redisTokenStore(t, 65536, 16)
				// The flood need not reach the disk on each login.
				redis.CLI("CONFIG", "SET", "appendfsync", "no")
			}
			tokens := make([][16]byte, others)
			for i := range tokens {
				tokens[i], _ = s.login(netip.AddrFrom4([4]byte{192, 0, 2 + byte(i>>8), byte(i)}), fmt.Sprintf("north-%d", i), tokenN(i), false)
			}
			start := time.Now()
			var wg sync.WaitGroup
			const workers = 8
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < flood; i += workers {
						if _, ok := s.login(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "mallory", tokenN(others+i), false); !ok {
							t.Errorf("mallory's login %d refused", i)
							return
						}
					}
				}()
			}
			wg.Wait()
			ended := 0
			for i := range tokens {
				if !s.valid(tokens[i]) {
					ended++
				}
			}
			t.Logf("%s store: after %d logins of one user with %d ips (%v), %d of %d other users' tokens ended; %d north servers held",
				store, flood, flood, time.Since(start).Round(time.Millisecond), ended, others, s.servers())
			if ended != 0 || s.servers() != others+16 {
				t.Errorf("%d other users' tokens ended, %d north servers held; want 0 and %d", ended, s.servers(), others+16)
			}
		})
	}
}
