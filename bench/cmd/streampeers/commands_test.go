package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestServerCommands(t *testing.T) {
	pin := pinning{ServerCPU: "0", LoadCPU: "1"}
	for _, c := range []struct {
		name string
		got  command
		argv string
		env  []string
	}{
		{
			"northd, memory",
			northdCommand("bin/bench", pin, "127.0.0.1:41000", "127.0.0.1:41001", ""),
			"taskset -c 0 bin/bench/northd -listen 127.0.0.1:41000 -admin 127.0.0.1:41001 -event-max-streams 20000 -max-conns 30000 -registry-max 20000",
			[]string{"GOMAXPROCS=1"},
		},
		{
			"northd, redis",
			northdCommand("bin/bench", pin, "127.0.0.1:41000", "127.0.0.1:41001", "127.0.0.1:46379"),
			"taskset -c 0 bin/bench/northd -listen 127.0.0.1:41000 -admin 127.0.0.1:41001 -event-max-streams 20000 -max-conns 30000 -registry-max 20000 -store redis://127.0.0.1:46379/0",
			[]string{"GOMAXPROCS=1"},
		},
		{
			"centrifugo, memory",
			centrifugoCommand("bin/bench", "bench/peers/centrifugo/config.json", pin, 42000, ""),
			"taskset -c 0 bin/bench/centrifugo --config bench/peers/centrifugo/config.json",
			[]string{"GOMAXPROCS=1", "CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1", "CENTRIFUGO_HTTP_SERVER_PORT=42000", "CENTRIFUGO_ENGINE_TYPE=memory"},
		},
		{
			"centrifugo, redis",
			centrifugoCommand("bin/bench", "bench/peers/centrifugo/config.json", pin, 42000, "127.0.0.1:46379"),
			"taskset -c 0 bin/bench/centrifugo --config bench/peers/centrifugo/config.json",
			[]string{"GOMAXPROCS=1", "CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1", "CENTRIFUGO_HTTP_SERVER_PORT=42000",
				"CENTRIFUGO_ENGINE_TYPE=redis", "CENTRIFUGO_ENGINE_REDIS_ADDRESS=redis://127.0.0.1:46379"},
		},
		{
			"redis-server, on the load generator's CPU",
			redisCommand(pin, 46379, "/tmp/r"),
			"taskset -c 1 redis-server --bind 127.0.0.1 --port 46379 --save  --appendonly no --dir /tmp/r --daemonize no --protected-mode yes",
			nil,
		},
	} {
		if got := strings.Join(c.got.argv, " "); got != c.argv {
			t.Errorf("%s: argv\n %q, want\n %q", c.name, got, c.argv)
		}
		if !reflect.DeepEqual(c.got.env, c.env) {
			t.Errorf("%s: env %q, want %q", c.name, c.got.env, c.env)
		}
	}
}

func TestLoadtestCommand(t *testing.T) {
	pin := pinning{ServerCPU: "0", LoadCPU: "1"}
	l := load{streams: 1000, rate: 1000, batch: 100}
	for _, c := range []struct {
		name string
		r    loadRun
		want string
	}{
		{
			"northd, memory",
			loadRun{peer: northd, target: "http://127.0.0.1:41000", admin: "127.0.0.1:41001", l: l, duration: 2 * time.Second,
				publishers: 4, pid: 123, out: "bin/bench/streams-peers/x/a.json", loadtestBin: "bin/bench/loadtest"},
			"taskset -c 1 bin/bench/loadtest events -peer northd -target http://127.0.0.1:41000 -admin 127.0.0.1:41001 " +
				"-mode latency -streams 1000 -rate 1000 -batch 100 -duration 2s -publishers 4 -pid 123 -out bin/bench/streams-peers/x/a.json",
		},
		{
			"centrifugo, redis",
			loadRun{peer: centrifugo, target: "http://127.0.0.1:42000", config: "bench/peers/centrifugo/config.json", l: l, duration: 1500 * time.Millisecond,
				publishers: 2, pid: 124, storePID: 99, out: "b.json", loadtestBin: "bin/bench/loadtest"},
			"taskset -c 1 bin/bench/loadtest events -peer centrifugo -target http://127.0.0.1:42000 -centrifugo-config bench/peers/centrifugo/config.json " +
				"-mode latency -streams 1000 -rate 1000 -batch 100 -duration 1.5s -publishers 2 -pid 124 -store-pid 99 -out b.json",
		},
		{
			"idle, northd",
			loadRun{peer: northd, target: "http://127.0.0.1:41000", admin: "127.0.0.1:41001", idle: true, l: load{streams: 1000},
				duration: 2 * time.Second, publishers: 4, pid: 125, out: "c.json", loadtestBin: "bin/bench/loadtest"},
			"taskset -c 1 bin/bench/loadtest events -peer northd -target http://127.0.0.1:41000 -admin 127.0.0.1:41001 -mode idle -streams 1000 -pid 125 -out c.json",
		},
	} {
		got := loadtestCommand(pin, c.r)
		if s := strings.Join(got.argv, " "); s != c.want {
			t.Errorf("%s:\n %q, want\n %q", c.name, s, c.want)
		}
		if !reflect.DeepEqual(got.env, []string{"GOMAXPROCS=1"}) {
			t.Errorf("%s: env %q, want GOMAXPROCS=1", c.name, got.env)
		}
	}
}

func TestCommandString(t *testing.T) {
	c := command{argv: []string{"taskset", "-c", "1", "redis-server", "--save", "", "--dir", "/tmp/a b"}, env: []string{"GOMAXPROCS=1"}}
	if got, want := c.String(), `GOMAXPROCS=1 taskset -c 1 redis-server --save '' --dir '/tmp/a b'`; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestOrderAlternates(t *testing.T) {
	for round, want := range map[int][]string{
		1: {"northd", "centrifugo"},
		2: {"centrifugo", "northd"},
		3: {"northd", "centrifugo"},
		4: {"centrifugo", "northd"},
	} {
		if got := orderOf(round); !reflect.DeepEqual(got, want) {
			t.Errorf("round %d: %v, want %v", round, got, want)
		}
	}
}

func TestLoads(t *testing.T) {
	var got []string
	for _, l := range defaultLoads {
		got = append(got, l.name()+" "+l.title())
	}
	want := []string{
		"100s-1000r-10b 100 streams, 1,000 events/s, batches of 10",
		"100s-5000r-10b 100 streams, 5,000 events/s, batches of 10",
		"100s-10000r-10b 100 streams, 10,000 events/s, batches of 10",
		"1000s-1000r-100b 1,000 streams, 1,000 events/s, batches of 100",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loads %q, want %q", got, want)
	}
}

func TestMakeCommand(t *testing.T) {
	for _, c := range []struct {
		quick  bool
		rounds int
		d      time.Duration
		flags  []string
		want   string
	}{
		{false, 5, 2 * time.Second, nil, "make compare-streams-peers"},
		{true, 1, 2 * time.Second, nil, "make compare-streams-peers QUICK=1"},
		{false, 9, 3 * time.Second, []string{"-publishers 8"}, `make compare-streams-peers STREAMS_PEERS_ROUNDS=9 STREAMS_PEERS_DURATION=3s STREAMS_PEERS_FLAGS="-publishers 8"`},
	} {
		if got := makeCommand(c.quick, c.rounds, c.d, c.flags); got != c.want {
			t.Errorf("makeCommand = %q, want %q", got, c.want)
		}
	}
}

func TestOutBase(t *testing.T) {
	day := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	if got, want := outBase("bench/results", day, "vm", false), "bench/results/2026-12-04-vm-streams-peers"; got != want {
		t.Errorf("outBase = %q, want %q", got, want)
	}
	if got, want := outBase("bin/bench/results", day, "my host_1", true), "bin/bench/results/2026-12-04-quick-my-host-1-streams-peers"; got != want {
		t.Errorf("outBase = %q, want %q", got, want)
	}
}
