# loadtest/: constant-rate load tests that verify every response
# (loadtest/README.md). Included from the root Makefile; paths are relative
# to the repository root.
#
#   make loadtest            10 s verified smoke (mixed, raw TCP cases too) against a fresh bin/northd
#   make loadtest-bad-input  10 s of every refusal of the contract
#   make loadtest-ramp       highest rate with p99 <= 1 ms, northd on CPU 0, loadtest on CPU 1
#   make loadtest-ramp-nethttp   the same for bench/peers/nethttp
#   make loadtest-soak       login-varied 20k req/s for 60 s, northd's RSS sampled
#   make loadtest-conns      10000 idle keep-alive connections held under light load
#   make loadtest-auth-storm known north servers' cached logins (p99 <= 2 ms) during a
#                            storm of wrong passwords from 5000 addresses (only 401/429/503)
#   make loadtest-verify     GET /north/verify of 1000 logged-in north servers at 5000/s
#   make loadtest-verify-redis   the same with -store redis on a throwaway redis-server
#   make loadtest-ramp-redis         login ramp (p99 <= 2 ms) with -store redis, Redis on loadtest's CPU
#   make loadtest-ramp-verify-redis  the same ramp of GET /north/verify
#   make loadtest-ramp-verify        the verify ramp with the in-memory store (the baseline)
#   make loadtest-events         100 event streams while 10,000 events/s are published for 10 s:
#                                every event on every stream checked (order, no gap, no duplicate),
#                                publish-to-receive p50/p99/max; northd on CPU 0, loadtest on CPU 1
#   make loadtest-events-redis   the same with -store redis (Redis Streams)
#   make loadtest-events-fanout  20,000 events to 1, 100, 1,000 and 10,000 streams: events
#                                delivered per second and per northd CPU-second
#   make loadtest-events-idle    5,000 idle streams: northd's RSS and heap per stream
#   make loadtest-webhooks       10 webhook receivers, 1,000 events/s for 10 s: every delivery's
#                                signature, order and completeness checked; publish-to-delivery
#   make loadtest-webhooks-redis     the same with -store redis: subscriptions, cursors and leases in Redis
#   make loadtest-webhooks-batched   one receiver, 50,000 events/s in batches of up to 100
#   make loadtest-webhooks-hanging   the 10 receivers beside one that never answers
#
# LOADTEST_LOCK prefixes the long runs, e.g. LOADTEST_LOCK="flock /some/lock"
# so measurements on a shared machine do not overlap. LOADTEST_ARGS adds
# loadtest flags to any target.
GO ?= go
LOADTEST_OUT ?= loadtest/out
LOADTEST_LOCK ?=
LOADTEST_ARGS ?=
LOADTEST_SLO ?= 1ms
LOADTEST_NORTHD = ./bin/northd -listen {addr} -admin off
LOADTEST_RUN = loadtest/with-server.sh
# Ramp pinning: the server on one core, the load tool on the other (and
# with-server.sh's {redis} on the load tool's: LOADTEST_REDIS_CPU).
LOADTEST_PIN = LOADTEST_SERVER_CPU=0 LOADTEST_CPU=1

.PHONY: loadtest-events loadtest-events-redis loadtest-events-fanout loadtest-events-idle
.PHONY: loadtest-webhooks loadtest-webhooks-redis loadtest-webhooks-batched loadtest-webhooks-hanging
.PHONY: loadtest loadtest-build loadtest-bad-input loadtest-ramp loadtest-ramp-nethttp loadtest-soak loadtest-conns \
	loadtest-auth-storm loadtest-verify loadtest-verify-redis loadtest-ramp-redis loadtest-ramp-verify-redis loadtest-ramp-verify

# loadtest is a module of its own (loadtest/go.mod), hence go -C loadtest.
loadtest-build:
	$(GO) build -o bin/northd .
	$(GO) -C loadtest build -o $(abspath bin)/loadtest .
	@mkdir -p $(LOADTEST_OUT)

# The smoke's mix: every kind of answer, the raw TCP cases included.
LOADTEST_SMOKE_MIX = home=40,login=30,login-varied=10,not-found=10,bad-json=4,oversize=2,no-content-length=2,garbage-line=2
loadtest: loadtest-build
	$(LOADTEST_RUN) $(LOADTEST_NORTHD) -- -scenario mixed -mix $(LOADTEST_SMOKE_MIX) -rate 2000 -duration 10s \
		-out $(LOADTEST_OUT)/smoke.json $(LOADTEST_ARGS)

loadtest-bad-input: loadtest-build
	$(LOADTEST_RUN) $(LOADTEST_NORTHD) -- -scenario bad-input -rate 1000 -duration 10s -out $(LOADTEST_OUT)/bad-input.json $(LOADTEST_ARGS)

loadtest-ramp: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -- -scenario ramp -client fasthttp \
		-rate 5000 -step 5000 -refine 3 -duration 10s -slo $(LOADTEST_SLO) -out $(LOADTEST_OUT)/ramp-northd.json $(LOADTEST_ARGS)

# The nethttp peer from bench/peers/nethttp, measured the same way.
LOADTEST_PEER_NETHTTP = ./bin/peer-nethttp -listen {addr}
loadtest-ramp-nethttp: loadtest-build
	$(GO) -C bench build -o $(abspath bin)/peer-nethttp ./peers/nethttp
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_PEER_NETHTTP) -- -scenario ramp -client fasthttp \
		-rate 5000 -step 5000 -refine 3 -duration 10s -slo $(LOADTEST_SLO) -out $(LOADTEST_OUT)/ramp-nethttp.json $(LOADTEST_ARGS)

loadtest-soak: loadtest-build
	$(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -- -scenario soak -load login-varied -client fasthttp \
		-rate 20000 -duration 60s -warmup 10s -out $(LOADTEST_OUT)/soak.json $(LOADTEST_ARGS)

loadtest-conns: loadtest-build
	$(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -- -scenario conns -connections 10000 -rate 1000 \
		-duration 30s -slo $(LOADTEST_SLO) -out $(LOADTEST_OUT)/conns.json $(LOADTEST_ARGS)

# auth-storm: loadtest writes the known north servers' users file in a
# temporary directory, removed afterwards, hashed as LOADTEST_USERS_HASH
# says: argon2id as `northd hash-password` makes it (the default: what a
# wrong password costs northd in production), or bcrypt:COST. northd
# trusts loadtest's X-Forwarded-For, which stands for the storm's many
# client addresses. Pinned as the ramp is (LOADTEST_PIN= runs it
# unpinned). 60 s, so that the per-address failure limits engage.
LOADTEST_USERS_HASH ?= argon2id
LOADTEST_NORTH_SERVERS ?= 20
loadtest-auth-storm: loadtest-build
	dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	./bin/loadtest write-users -n $(LOADTEST_NORTH_SERVERS) -hash $(LOADTEST_USERS_HASH) "$$dir/users" && \
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -users "$$dir/users" -trusted-proxies 127.0.0.1 -- \
		-scenario auth-storm -client fasthttp -north-servers $(LOADTEST_NORTH_SERVERS) -rate 2000 -duration 60s -slo 2ms \
		-out $(LOADTEST_OUT)/auth-storm.json $(LOADTEST_ARGS)

# verify: 1000 north servers log in once (open mode: the token store does
# not care how the credentials were checked), then only GET /north/verify,
# every answer checked. The -redis one keeps the tokens in a throwaway
# redis-server that with-server.sh starts ({redis}) beside northd.
LOADTEST_VERIFY_ARGS = -scenario verify -client fasthttp -north-servers 1000 -rate 5000 -duration 30s
loadtest-verify: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -- $(LOADTEST_VERIFY_ARGS) \
		-out $(LOADTEST_OUT)/verify.json $(LOADTEST_ARGS)

loadtest-verify-redis: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -store 'redis://{redis}/0' -- $(LOADTEST_VERIFY_ARGS) \
		-out $(LOADTEST_OUT)/verify-redis.json $(LOADTEST_ARGS)

# Ramps against the Redis store, for the issue "Many instances, one truth":
# the highest rate with p99 <= 2 ms (LOADTEST_STORE_SLO), for login (one
# fixed body: each login runs northd's login script in Redis, replacing the
# north server's token) and for verify (1000 north servers log in once,
# then only GET /north/verify). northd on CPU 0; loadtest and the
# throwaway redis-server on CPU 1 (with-server.sh puts Redis on
# LOADTEST_CPU unless LOADTEST_REDIS_CPU says otherwise), so that northd's
# core is northd's alone. The JSON report's ramp.highest_rate_held is the
# figure; its steps' cpu.store is Redis's CPU. loadtest-ramp-verify is the
# same verify ramp against the in-memory store; the login baseline is
# make loadtest-ramp LOADTEST_SLO=2ms.
LOADTEST_STORE_SLO ?= 2ms
LOADTEST_RAMP_ARGS = -scenario ramp -client fasthttp -rate 5000 -step 5000 -refine 3 -duration 10s
loadtest-ramp-redis: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -store 'redis://{redis}/0' -- $(LOADTEST_RAMP_ARGS) \
		-load login -slo $(LOADTEST_STORE_SLO) -out $(LOADTEST_OUT)/ramp-redis.json $(LOADTEST_ARGS)

loadtest-ramp-verify-redis: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -store 'redis://{redis}/0' -- $(LOADTEST_RAMP_ARGS) \
		-load verify -north-servers 1000 -slo $(LOADTEST_STORE_SLO) -out $(LOADTEST_OUT)/ramp-verify-redis.json $(LOADTEST_ARGS)

loadtest-ramp-verify: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_NORTHD) -- $(LOADTEST_RAMP_ARGS) \
		-load verify -north-servers 1000 -slo $(LOADTEST_STORE_SLO) -out $(LOADTEST_OUT)/ramp-verify.json $(LOADTEST_ARGS)

# Event streams (loadtest events): northd with an admin listener to publish
# on, room for 10,000 streams, and the load tool's command.
LOADTEST_EVENTS_NORTHD = ./bin/northd -listen {addr} -admin {admin} -event-max-streams 20000 -max-conns 30000 -registry-max 20000
LOADTEST_EVENTS = LOADTEST_CMD="./bin/loadtest events"
loadtest-events: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_EVENTS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_EVENTS_NORTHD) -- \
		-mode latency -streams 100 -rate 10000 -duration 10s -out $(LOADTEST_OUT)/events.json $(LOADTEST_ARGS)

loadtest-events-redis: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_EVENTS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_EVENTS_NORTHD) -store 'redis://{redis}/0' -- \
		-mode latency -streams 100 -rate 10000 -duration 10s -out $(LOADTEST_OUT)/events-redis.json $(LOADTEST_ARGS)

# 10,000 streams hold 20,000 descriptors on this machine (both ends): the
# target raises the soft limit as far as the hard one allows.
loadtest-events-fanout: loadtest-build
	@ulimit -n $$(ulimit -Hn); for n in 1 100 1000 10000; do \
		$(LOADTEST_PIN) $(LOADTEST_EVENTS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_EVENTS_NORTHD) -- \
			-mode fanout -streams $$n -events 20000 -batch 100 -out $(LOADTEST_OUT)/events-fanout-$$n.json $(LOADTEST_ARGS) || exit 1; \
	done

loadtest-events-idle: loadtest-build
	@ulimit -n $$(ulimit -Hn); $(LOADTEST_PIN) $(LOADTEST_EVENTS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_EVENTS_NORTHD) -- \
		-mode idle -streams 5000 -out $(LOADTEST_OUT)/events-idle.json $(LOADTEST_ARGS)

# Webhooks (loadtest webhooks): receivers on 127.0.0.10 and up, which
# -push-allow must name; -push-rate high enough for batches of 100 at
# 50,000 events/s.
LOADTEST_WEBHOOKS_NORTHD = ./bin/northd -listen {addr} -admin {admin} -push-allow 127.0.0.0/8 -push-rate 1000 -push-timeout 2s
LOADTEST_WEBHOOKS = LOADTEST_CMD="./bin/loadtest webhooks"
loadtest-webhooks: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_WEBHOOKS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_WEBHOOKS_NORTHD) -- \
		-receivers 10 -rate 1000 -batch 10 -duration 10s -out $(LOADTEST_OUT)/webhooks.json $(LOADTEST_ARGS)

# Secrets sealed in Redis, as docs/operating.md recommends: a fresh key each run.
loadtest-webhooks-redis: loadtest-build
	@mkdir -p $(LOADTEST_OUT) && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $(LOADTEST_OUT)/push-keys
	$(LOADTEST_PIN) $(LOADTEST_WEBHOOKS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_WEBHOOKS_NORTHD) -store 'redis://{redis}/0' -push-secret-key-file $(LOADTEST_OUT)/push-keys -- \
		-receivers 10 -rate 1000 -batch 10 -duration 10s -out $(LOADTEST_OUT)/webhooks-redis.json $(LOADTEST_ARGS)

loadtest-webhooks-batched: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_WEBHOOKS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_WEBHOOKS_NORTHD) -- \
		-receivers 1 -rate 50000 -batch 100 -duration 10s -out $(LOADTEST_OUT)/webhooks-batched.json $(LOADTEST_ARGS)

loadtest-webhooks-hanging: loadtest-build
	$(LOADTEST_PIN) $(LOADTEST_WEBHOOKS) $(LOADTEST_LOCK) $(LOADTEST_RUN) $(LOADTEST_WEBHOOKS_NORTHD) -- \
		-receivers 10 -hanging 1 -rate 1000 -batch 10 -duration 10s -out $(LOADTEST_OUT)/webhooks-hanging.json $(LOADTEST_ARGS)
