# northd: `make run` serves on 127.0.0.1:8000; `make test` is what CI runs.
GO ?= go
BENCHCOUNT ?= 6
FUZZTIME ?= 60s

.PHONY: run build test test-lb bench fuzz clean

# ARGS passes flags: make run ARGS="-listen 127.0.0.1:8000,127.0.0.1:8001"
run: build
	./bin/northd $(ARGS)

build:
	$(GO) build -o bin/northd ./cmd/northd

test:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# HAProxy in front of two northd instances, rolling restart under verified
# load (make test runs it too, and skips it when haproxy is missing).
test-lb:
	@command -v haproxy >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
	$(GO) test -count=1 -v -run 'TestBehindHAProxy|TestSecondSignal' ./lbtest

# Every Go benchmark: per handler and per connection (root, 0 allocs/op on
# every route) and end to end over loopback (bench/). Output feeds benchstat
# (see README).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) . ./bench | tee bench.txt

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoginDecode -fuzztime $(FUZZTIME) .

clean:
	rm -rf bin bench.txt

# bench/ and loadtest/ bring their own targets (compare, bench-conns,
# loadtest, ...); included last so that plain `make` stays `make run`.
-include bench/bench.mk loadtest/loadtest.mk
