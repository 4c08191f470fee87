package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // checked in parseConfig
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// fasthttpLogger routes fasthttp's own messages (accept errors, connection
// errors) into the project's logger instead of the standard log package.
type fasthttpLogger struct {
	log       *slog.Logger
	subsystem string
}

func (l fasthttpLogger) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "error when serving connection") {
		// A client that sent a bad request or went away: it already got
		// its answer (or left), so this is detail, not a server problem.
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, "subsystem", l.subsystem, "source", "fasthttp")
}
