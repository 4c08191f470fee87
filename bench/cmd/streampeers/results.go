package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"northd/bench/internal/benchutil"
)

// runRecord is one run of loadtest events, as the JSON file keeps it.
type runRecord struct {
	Engine  string       `json:"engine"`
	Load    load         `json:"load"`
	Idle    bool         `json:"idle,omitempty"`
	Round   int          `json:"round"`
	Peer    string       `json:"server"`
	File    string       `json:"file"`
	Command string       `json:"command"`
	Report  eventsReport `json:"report"`
}

// results gathers the runs and what the report says about how they ran.
type results struct {
	o        *options
	started  time.Time
	runs     []runRecord
	commands []string        // the first command of each kind, in order
	kinds    map[string]bool // the kinds seen
	redisVer string

	// What the report says of the run, read when it ends (or from its
	// JSON file, when the report is rewritten: rewrittenFrom is that file).
	elapsed       time.Duration
	makeCmd       string
	host          string
	machineLines  []string
	vers          versions
	rewrittenFrom string
}

func newResults(o *options, started time.Time) *results {
	return &results{o: o, started: started, kinds: map[string]bool{}}
}

func (r *results) add(rec runRecord) { r.runs = append(r.runs, rec) }

// noteCommand keeps the first command of each kind for the report, the
// redis-server's temporary directory named by a variable.
func (r *results) noteCommand(kind string, c command, rs *redisServer) {
	if r.kinds[kind] {
		return
	}
	r.kinds[kind] = true
	line := c.String()
	if rs != nil {
		line = strings.ReplaceAll(line, rs.dir, "$REDISDIR")
	}
	r.commands = append(r.commands, line+"   # "+kind)
}

func (r *results) noteRedis(rs *redisServer) {
	r.noteCommand("redis-server ($REDISDIR: a temporary directory, removed at the end)", rs.c, rs)
	if r.redisVer == "" {
		r.redisVer = benchutil.FirstLine("redis-server", "--version")
	}
}

// rounds are the reports of peer's rounds on engine and load, in order.
func (r *results) rounds(engine string, l load, peer string) []eventsReport {
	var out []eventsReport
	for _, rec := range r.runs {
		if !rec.Idle && rec.Engine == engine && rec.Load == l && rec.Peer == peer {
			out = append(out, rec.Report)
		}
	}
	return out
}

// idle is peer's idle run on engine, if it ran.
func (r *results) idle(engine, peer string) (eventsReport, bool) {
	for _, rec := range r.runs {
		if rec.Idle && rec.Engine == engine && rec.Peer == peer {
			return rec.Report, true
		}
	}
	return eventsReport{}, false
}

// comparisons are every engine and load, in the order they ran.
func (r *results) comparisons() []comparison {
	var cs []comparison
	for _, e := range engines {
		for _, l := range r.o.loads {
			nd, cf := r.rounds(e, l, northd), r.rounds(e, l, centrifugo)
			if len(nd) > 0 || len(cf) > 0 {
				cs = append(cs, compare(e, l, nd, cf))
			}
		}
	}
	return cs
}

// versions says what was compared: northd's revision, Centrifugo's.
type versions struct {
	Northd           string `json:"northd"`
	Centrifugo       string `json:"centrifugo"`        // its version command's output
	CentrifugoModule string `json:"centrifugo_module"` // the module it was built from
}

func readVersions(binDir string) versions {
	v := versions{Northd: northdRevision()}
	cf := filepath.Join(binDir, "centrifugo")
	v.Centrifugo = benchutil.FirstLine(cf, "version")
	if bi, err := buildinfo.ReadFile(cf); err == nil {
		v.CentrifugoModule = bi.Main.Path + " " + bi.Main.Version + ", built with " + bi.GoVersion
	}
	return v
}

// northdRevision is the revision of the working tree make
// compare-streams-peers built northd from (bench-build-northd, in
// bench/bench.mk), and whether it had uncommitted changes.
func northdRevision() string {
	rev := strings.TrimSpace(gitOutput("rev-parse", "HEAD"))
	if rev == "" {
		return "unknown (not a git checkout)"
	}
	s := rev[:min(12, len(rev))] + " (“" + strings.TrimSpace(gitOutput("log", "-1", "--format=%s", "HEAD")) + "”)"
	if r := []rune(s); len(r) > 100 {
		s = string(r[:99]) + "…”)"
	}
	if strings.TrimSpace(gitOutput("status", "--porcelain", "--untracked-files=no")) != "" {
		s += ", with uncommitted changes"
	}
	return s
}

func gitOutput(args ...string) string {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// machine describes the machine for the report.
func (r *results) machine() []string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	goVersion := benchutil.FirstLine("go", "version")
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	lines := []string{
		fmt.Sprintf("CPU: %s, %d CPUs (runtime.NumCPU)", model, runtime.NumCPU()),
		"kernel: Linux " + strings.TrimSpace(string(kernel)) + " " + runtime.GOARCH,
		"Go: " + goVersion,
	}
	if hv := strings.TrimSpace(benchutil.FirstLine("sh", "-c", "lscpu 2>/dev/null | grep -i 'hypervisor vendor' | cut -d: -f2")); hv != "" {
		lines = append(lines, "virtualisation: "+hv)
	}
	if r.redisVer != "" {
		lines = append(lines, "redis-server: "+r.redisVer)
	}
	return lines
}

// outBase is the report's path without its extension, as compare names
// its reports: <date>-<host>-streams-peers (the date with -quick for a
// smoke run).
func outBase(dir string, day time.Time, host string, quick bool) string {
	date := day.Format("2006-01-02")
	if quick {
		date += "-quick"
	}
	return filepath.Join(dir, date+"-"+benchutil.SafeName(host)+"-streams-peers")
}
