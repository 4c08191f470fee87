package main

import (
	"runtime/debug"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
)

// buildInfo says which northd this is: the module version ("(devel)" for a
// build from a work tree) and the VCS revision Go stamped into the binary
// ("unknown" for `go run` and test binaries, which are not stamped).
type buildInfo struct {
	version, revision, goVersion string
	modified                     bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: "unknown", revision: "unknown", goVersion: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.goVersion = info.GoVersion
	if info.Main.Version != "" {
		b.version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// String is what northd -version prints.
func (b buildInfo) String() string {
	s := "northd " + b.version + " revision " + b.revision
	if b.modified {
		s += " (modified)"
	}
	return s + " " + b.goVersion
}

// register adds northd_build_info{version,revision,goversion} 1, the usual
// Prometheus way to expose a build: join on it to label other series.
func (b buildInfo) register(set *metrics.Set) {
	set.NewGauge(`northd_build_info{version=`+strconv.Quote(b.version)+`,revision=`+strconv.Quote(b.revision)+`,goversion=`+strconv.Quote(b.goVersion)+`}`, func() float64 { return 1 })
}
