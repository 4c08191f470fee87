package main

import (
	"strings"
	"testing"
	"time"
)

func TestTailBuffer(t *testing.T) {
	for _, c := range []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"nothing written", 8, nil, ""},
		{"under the limit", 8, []string{"abc", "de"}, "abcde"},
		{"exactly the limit", 8, []string{"abcd", "efgh"}, "abcdefgh"},
		{"over it: the start goes", 8, []string{"abcdef", "ghij"}, "cdefghij"},
		{"one write longer than the limit", 8, []string{"ab", "0123456789"}, "23456789"},
		{"one write of the limit after others", 4, []string{"ab", "wxyz"}, "wxyz"},
		{"many short writes, through compactions", 4, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}, "hijk"},
		{"a write that fills past twice the limit", 4, []string{"abc", "def", "gh"}, "efgh"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newTailBuffer(c.limit)
			for _, w := range c.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
			}
			if got := b.String(); got != c.want {
				t.Errorf("String() = %q, want %q", got, c.want)
			}
			if len(b.b) > 2*c.limit {
				t.Errorf("holds %d bytes for a limit of %d, want at most twice it", len(b.b), c.limit)
			}
		})
	}
}

// A process that prints far more than is kept and then its error: the
// error is what output() ends with.
func TestProcOutputKeepsTheLastLines(t *testing.T) {
	// 2,000 lines of 100 bytes: 200,000 bytes, three times what is kept.
	script := `i=0; while [ $i -lt 2000 ]; do printf '%099d\n' $i; i=$((i+1)); done; echo 'fatal: listen 127.0.0.1:6379: address in use' >&2; exit 3`
	p, err := startProc("sh", command{argv: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("sh did not exit within a minute")
	}
	if got, want := lastLines(p.output(), 2), strings.Repeat("0", 95)+"1999\nfatal: listen 127.0.0.1:6379: address in use"; got != want {
		t.Errorf("last lines = %q, want %q", got, want)
	}
	p.mu.Lock()
	kept := p.log.String()
	p.mu.Unlock()
	if len(kept) != 65536 {
		t.Errorf("kept %d bytes, want 65,536 (64 KiB)", len(kept))
	}
	if first := strings.Repeat("0", 99) + "\n"; strings.HasPrefix(kept, first) || strings.Contains(kept, "\n"+first) {
		t.Error("kept the first line, want only the end")
	}
}
