# northd: `make run` serves on 127.0.0.1:8000; `make test` is what CI runs.
GO ?= go
BENCHCOUNT ?= 6
FUZZTIME ?= 60s

.PHONY: run build test test-lb chaos bench fuzz clean

# ARGS passes flags: make run ARGS="-listen 127.0.0.1:8000,127.0.0.1:8001"
run: build
	./bin/northd $(ARGS)

build:
	$(GO) build -o bin/northd .

# The race detector allocates on its own, so the tests that lock in
# 0 allocs/op (named *Allocat*) skip under it, saying so, and run again
# without it. Skipped tests are listed with their reasons; under CI=true a
# test whose real part (haproxy, redis-server, htpasswd) is missing fails
# instead of skipping.
test:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@echo "$(GO) test -race -count=1 ./... (full log in bin/test.log)"; mkdir -p bin; \
	$(GO) test -race -count=1 -v ./... > bin/test.log 2>&1; rc=$$?; \
	awk '/^=== (RUN|CONT)/ {cur = $$3} /^ +[^ ]+_test\.go:[0-9]+: / {msg[cur] = $$0} /^ *--- SKIP/ {print "SKIP " $$3 ":" msg[$$3]}' bin/test.log; \
	if [ $$rc -ne 0 ]; then grep -v -E '^(=== |--- PASS| +--- PASS)' bin/test.log; exit $$rc; fi; \
	grep -E '^(ok|FAIL|\?) ' bin/test.log
	$(GO) test -count=1 -run 'Allocat' ./...
	$(MAKE) --no-print-directory test-tools

# HAProxy in front of two northd instances, rolling restart under verified
# load (make test runs it too, and skips it when haproxy is missing).
test-lb:
	@command -v haproxy >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
	$(GO) test -count=1 -v -run 'TestBehindHAProxy|TestSecondSignal' ./lbtest

# The push under seeded faults (redis-server killed and restored, instances
# killed or stopped past their lease, receivers failing, north servers
# logging out or replaced), held to its promise by lbtest/chaoscheck.
# make test runs two schedules; CHAOS_SCHEDULES=50 make chaos, more;
# CHAOS_SEED=N make chaos replays the schedule a run printed.
CHAOS_SCHEDULES ?= 10
chaos:
	CHAOS_SCHEDULES=$(CHAOS_SCHEDULES) $(GO) test -count=1 -v -run TestChaos -timeout 2h ./lbtest

# Every Go benchmark: per handler and per connection (root, 0 allocs/op on
# every route) and end to end over loopback (bench/, a module of its own,
# against the northd binary). Output feeds benchstat (see docs/performance.md).
bench:
	{ $(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) . && \
		$(GO) -C bench test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) . ; } | tee bench.txt

# bench/ and loadtest/ are modules of their own (each with a go.mod that
# requires this one through a replace), so go vet and go test ./... here do
# not reach them: test-tools runs theirs.
TOOL_MODULES = bench loadtest

.PHONY: test-tools
test-tools:
	@for m in $(TOOL_MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) mod tidy -diff && $(GO) vet ./... && $(GO) test -race -count=1 ./...) || exit 1; \
	done

# go test -fuzz takes one fuzz test at a time: the wire package's (login
# decoder, ip and bearer parsers, JSON strings), the password checker's
# framing, then the push's parsers (event ids, publishes, webhook urls,
# secrets, Retry-After, the secret-sealing keys).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoginDecode -fuzztime $(FUZZTIME) ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzParseIP -fuzztime $(FUZZTIME) ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzParseBearer -fuzztime $(FUZZTIME) ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzAppendJSONString -fuzztime $(FUZZTIME) ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzCheckFrames -fuzztime $(FUZZTIME) ./internal/auth/
	$(GO) test -run '^$$' -fuzz FuzzParseID -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz FuzzPublishDecode -fuzztime $(FUZZTIME) ./internal/events/eventshttp/
	$(GO) test -run '^$$' -fuzz FuzzCheckURL -fuzztime $(FUZZTIME) ./internal/webhooks/
	$(GO) test -run '^$$' -fuzz FuzzParseSecret -fuzztime $(FUZZTIME) ./internal/webhooks/
	$(GO) test -run '^$$' -fuzz FuzzRetryAfter -fuzztime $(FUZZTIME) ./internal/webhooks/
	$(GO) test -run '^$$' -fuzz FuzzParseSecretKeys -fuzztime $(FUZZTIME) ./internal/push/redis/

clean:
	rm -rf bin bench.txt

# bench/ and loadtest/ bring their own targets (compare, bench-conns,
# loadtest, ...); included last so that plain `make` stays `make run`.
-include bench/bench.mk loadtest/loadtest.mk
