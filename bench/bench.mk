# bench/bench.mk: benchmark targets, included from the root Makefile
# (paths are relative to the repository root). See bench/README.md.
#
#   make compare              northd against its peers, keep-alive and pipelined-16,
#                             then against itself (cached login, verify, HTTPS,
#                             -store redis), under wrk, 15 rounds of 2 s (~25 min)
#   make compare QUICK=1      one short round, for smoke runs (~2 min)
#   make compare-parallel     servers and wrk unpinned on both CPUs, GOMAXPROCS=2 (~9 min)
#   make compare-ab           northd against northd-old, built from OLD (default: the
#                             commit before the lazy deadlines), and the floor (~7 min);
#                             NEW=<rev> builds northd from a revision too
#   make compare-streams      login and verify of northd holding 1,000 event streams open
#                             against northd-old built before events (~3 min)
#   make compare-streams-peers  northd's event streams against Centrifugo v6.9.1's uni_sse
#                             under loadtest events, memory and Redis engines, 4 loads,
#                             5 rounds of 2 s, every event verified (~3 min; QUICK=1 ~20 s)
#   make bench-centrifugo     Centrifugo at the pinned version into bin/bench (a few minutes
#                             the first time)
#   make compare-auth         only cached login, verify, HTTPS (~4 min; QUICK=1 too)
#   make compare-store        only -store redis against -store memory, login and
#                             verify, with Redis's commands per request (~3 min; QUICK=1 too)
#   make bench-e2e            Go end-to-end benchmarks, output for benchstat
#   make bench-conns          RSS per idle keep-alive connection (8,000)
#   make bench-profile        CPU profile of northd under wrk (PROFILE_ROUTE=login)
#   make bench-tools          install wrk, nginx and python3 (root, Debian)

_bench_default_goal := $(.DEFAULT_GOAL)

GO ?= go
BENCHCOUNT ?= 6
# Many short rounds: this machine's noise comes in bursts of seconds, and
# the runs of one round, seconds apart, see the same burst.
COMPARE_ROUNDS ?= 15
COMPARE_DURATION ?= 2s
COMPARE_FLAGS ?=
CONNS ?= 8000
BENCH_BIN := bin/bench

ifeq ($(QUICK),1)
_compare_args := -quick -out $(BENCH_BIN)/results
else
_compare_args := -rounds $(COMPARE_ROUNDS) -duration $(COMPARE_DURATION)
endif

PROFILE_ROUTE ?= login

# The revision northd-old is built from (make bench-build-old, make
# compare-ab): by default the parent of the commit that made deadlines
# lazy. Only evaluated when used.
OLD ?= $(shell git log --format=%H --grep='^Lazy deadlines: serverConn' -1)^

.PHONY: compare-streams-peers bench-centrifugo bench-build-northd compare-streams compare compare-auth compare-store compare-parallel compare-ab bench-build-old bench-e2e bench-conns bench-tools bench-build bench-profile

# wrk is required; nginx and python3 only for their peers, redis-server
# (with redis-cli) only for the -store redis pairs (compare skips a peer
# or pair that cannot run, with one line saying so). Debian starts a
# redis-server of its own on install; compare starts its own on a free port.
bench-tools:
	@need=""; \
	command -v wrk >/dev/null || need="$$need wrk"; \
	command -v nginx >/dev/null || need="$$need nginx-light"; \
	command -v python3 >/dev/null || need="$$need python3"; \
	command -v taskset >/dev/null || need="$$need util-linux"; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v redis-cli >/dev/null || need="$$need redis-tools"; \
	if [ -n "$$need" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "bench-tools: installing$$need"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends $$need >/dev/null || \
				echo "bench-tools: could not install$$need; compare skips what is missing"; \
		else \
			echo "bench-tools: missing$$need (install them, or run as root on Debian); compare skips what is missing"; \
		fi; \
	fi

# northd is built into bin/bench too, so that a rebuild of bin/northd
# cannot swap the binary under a comparison; bench-build-northd builds it
# alone, for compare-streams-peers. The rest is bench's own module
# (bench/go.mod), hence go -C bench.
bench-build-northd:
	$(GO) build -o $(BENCH_BIN)/northd .

bench-build: bench-build-northd
	$(GO) -C bench build -o $(abspath $(BENCH_BIN))/floor ./peers/floor
	$(GO) -C bench build -o $(abspath $(BENCH_BIN))/nethttp ./peers/nethttp
	$(GO) -C bench build -o $(abspath $(BENCH_BIN))/compare ./cmd/compare
	$(GO) -C bench build -o $(abspath $(BENCH_BIN))/conns ./cmd/conns

# Writes bench/results/<date>-<host>.md and .png (QUICK=1: under bin/bench/results).
compare: bench-tools bench-build
	$(BENCH_BIN)/compare $(_compare_args) $(COMPARE_FLAGS)

# The pairs alone (bench/cmd/compare/pairs.go): a cached login with -users
# against an open-mode login, GET /north/verify against GET /, HTTPS
# against HTTP. compare makes the users file and the certificate in a
# temporary directory and removes it. Writes <date>-<host>-auth.md.
compare-auth: bench-tools bench-build
	$(BENCH_BIN)/compare $(_compare_args) -routes none -pairs login-cached,verify,https -tag auth $(COMPARE_FLAGS)

# The -store redis pairs alone (bench/cmd/compare/store.go): login and
# verify with northd -store redis against the in-memory store. compare
# starts a throwaway redis-server (no persistence, loopback, a temporary
# directory) pinned to wrk's CPU, counts Redis's commands per request
# (CONFIG RESETSTAT before each run, INFO commandstats after it) and stops
# it at the end. Writes <date>-<host>-store.md.
compare-store: bench-tools bench-build
	$(BENCH_BIN)/compare $(_compare_args) -routes none -pairs login-redis,verify-redis -tag store $(COMPARE_FLAGS)

# Servers and wrk unpinned on every CPU (both, here): Go servers with
# GOMAXPROCS=2, wrk -t2, nginx 2 workers; keep-alive and pipelined-16 GET /
# and login. Writes <date>-<host>-parallel.md.
compare-parallel: bench-tools bench-build
	$(BENCH_BIN)/compare $(_compare_args) -parallel -pairs none -routes home,login,home-p16,login-p16 -servers northd,floor,floor-10s,nginx $(COMPARE_FLAGS)

# NEW=<rev> (make compare-ab NEW=<rev>): northd too is built from a
# revision rather than the working tree, for an A/B of two commits alone;
# northd, northd-old and a copy of the floor then go to bin/bench/ab.
NEW ?=
_ab_bin = $(if $(NEW),$(BENCH_BIN)/ab,$(BENCH_BIN))
_ab_bin_flag = $(if $(NEW),-bin $(_ab_bin))

# $(call _build_rev,REV,OUT): northd at the revision REV, from git archive
# into a temporary directory (removed at the end, interrupted or not),
# built into OUT; the revision's hash and subject go to OUT.rev for
# compare's report.
define _build_rev
@rev=$$(git rev-parse --verify -q '$(1)^{commit}') || { echo "bench-build-old: no revision '$(1)': give one, make compare-ab OLD=<rev>"; exit 1; }; \
rm -f $(2) $(2).rev; \
tmp=$$(mktemp -d) || exit 1; trap 'rm -rf "$$tmp"' EXIT; trap 'exit 1' INT TERM; \
echo "bench-build-old: northd at $$(git log -1 --format='%h %s' $$rev | cut -c1-100) into $(2)"; \
mkdir -p $(dir $(2)) && \
git archive "$$rev" | tar -x -C "$$tmp" && \
$(GO) -C "$$tmp" build -o $(abspath $(2)) . && \
git log -1 --format='%H%n%s' "$$rev" > $(2).rev
endef

# northd-old: northd at OLD (bin/bench/northd-old), and with NEW northd at
# NEW too (both in bin/bench/ab).
bench-build-old:
	$(call _build_rev,$(OLD),$(_ab_bin)/northd-old)
	$(if $(NEW),$(call _build_rev,$(NEW),$(_ab_bin)/northd))

# northd (the working tree, or NEW) against northd-old (OLD) and the floor,
# on keep-alive and pipelined-16 GET / and login, and verify: the northd ÷ northd-old
# column is what changed between them. COMPARE_FLAGS=-parallel for the
# same on both CPUs. Writes <date>-<host>-ab.md.
compare-ab: bench-tools bench-build bench-build-old
	$(if $(NEW),cp $(BENCH_BIN)/floor $(_ab_bin)/floor)
	$(BENCH_BIN)/compare $(_ab_bin_flag) $(_compare_args) -pairs none -routes home,login,verify,home-p16,login-p16 -servers northd,northd-old,floor -tag ab $(COMPARE_FLAGS)

# The northd binary driven by fasthttp's HostClient and PipelineClient.
# Compare two runs: benchstat old.txt bench/e2e.txt (see bench/README.md).
bench-e2e:
	$(GO) -C bench test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) . | tee bench/e2e.txt

# 8,000 idle keep-alive connections, each after one request: RSS per
# connection of northd (with and without -reduce-memory), floor and nethttp.
bench-conns: bench-build
	@ulimit -n $$(( $(CONNS) * 2 + 1024 )) 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	echo "bench-conns: open files limit $$(ulimit -n)"; \
	$(BENCH_BIN)/conns -n $(CONNS) -bin $(BENCH_BIN)

# CPU profile of northd under wrk on one route (home, login,
# login-varied, notfound): make bench-profile PROFILE_ROUTE=login
bench-profile: bench-tools bench-build
	sh bench/profile.sh $(PROFILE_ROUTE)

.DEFAULT_GOAL := $(_bench_default_goal)

# What open event streams cost logins and verifies: northd holding
# STREAMS (1,000) streams open, against northd-old built from the commit
# before events came (STREAMS_OLD), on login and verify. Writes
# <date>-<host>-streams.md; its northd ÷ northd-old column is the cost.
STREAMS ?= 1000
STREAMS_OLD ?= $(shell git log --format=%H --grep="^events: the event log's contract" -1)^
compare-streams: bench-tools bench-build
	$(call _build_rev,$(STREAMS_OLD),$(BENCH_BIN)/northd-old)
	$(BENCH_BIN)/compare $(_compare_args) -pairs none -routes login,verify -servers northd,northd-old -streams $(STREAMS) -tag streams $(COMPARE_FLAGS)

# Centrifugo, the peer of the event streams, at a pinned version, built
# with the Go toolchain into bin/bench. go install stamps no version of
# its own, so -X sets the one `centrifugo version` prints: that line is
# how this target knows the binary there is the pinned one, and it is
# what compare-streams-peers reports.
CENTRIFUGO_VERSION := 6.9.1
CENTRIFUGO_MODULE := github.com/centrifugal/centrifugo/v6
bench-centrifugo:
	@case "$$($(BENCH_BIN)/centrifugo version 2>/dev/null)" in \
	"Centrifugo v$(CENTRIFUGO_VERSION) "*) ;; \
	*) echo "bench-centrifugo: building Centrifugo v$(CENTRIFUGO_VERSION) into $(BENCH_BIN) (a few minutes the first time)"; \
		GOBIN=$(abspath $(BENCH_BIN)) $(GO) install -ldflags "-X $(CENTRIFUGO_MODULE)/internal/build.Version=$(CENTRIFUGO_VERSION)" \
			$(CENTRIFUGO_MODULE)@v$(CENTRIFUGO_VERSION) || exit 1; \
		case "$$($(BENCH_BIN)/centrifugo version)" in "Centrifugo v$(CENTRIFUGO_VERSION) "*) ;; \
		*) echo "bench-centrifugo: $(BENCH_BIN)/centrifugo says \"$$($(BENCH_BIN)/centrifugo version)\", not v$(CENTRIFUGO_VERSION)"; exit 1;; esac;; \
	esac

# northd's event streams beside Centrifugo's uni_sse under one load
# generator, loadtest events, which checks every event on every stream
# (bench/cmd/streampeers): memory and Redis engines (a throwaway
# redis-server, fresh for every engine and load), 100 streams at 1,000,
# 5,000 and 10,000 events/s in batches of 10 and 1,000 streams at 1,000/s
# in batches of 100, STREAMS_PEERS_ROUNDS rounds of STREAMS_PEERS_DURATION
# each, the two servers in turn (A B, B A, …), then 1,000 idle streams on
# each. Servers on CPU 0, loadtest and Redis on CPU 1, GOMAXPROCS=1. 1,000
# streams hold 2,000 descriptors (both ends), so the soft open-files limit
# is raised as far as the hard one allows. Writes
# bench/results/<date>-<host>-streams-peers.md, .json and .png (QUICK=1:
# one round of one load, under bin/bench/results); every run's loadtest
# report stays in bin/bench/streams-peers/.
STREAMS_PEERS_ROUNDS ?= 5
STREAMS_PEERS_DURATION ?= 2s
STREAMS_PEERS_FLAGS ?=
ifeq ($(QUICK),1)
_streams_peers_args := -quick -out $(BENCH_BIN)/results
else
_streams_peers_args := -rounds $(STREAMS_PEERS_ROUNDS) -duration $(STREAMS_PEERS_DURATION)
endif
compare-streams-peers: bench-tools bench-centrifugo bench-build-northd
	$(GO) -C loadtest build -o $(abspath $(BENCH_BIN))/loadtest .
	$(GO) -C bench build -o $(abspath $(BENCH_BIN))/streampeers ./cmd/streampeers
	@ulimit -n $$(ulimit -Hn); $(BENCH_BIN)/streampeers $(_streams_peers_args) $(STREAMS_PEERS_FLAGS)
