package benchutil

import "testing"

func TestSafeName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "host"},
		{"vm", "vm"},
		{"build-01.example.org", "build-01.example.org"},
		{"my host/2", "my-host-2"},
		{"hôte", "h-te"},
	} {
		if got := SafeName(c.in); got != c.want {
			t.Errorf("SafeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "''"},
		{"redis-server", "redis-server"},
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"GOMAXPROCS=1", "GOMAXPROCS=1"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
	} {
		if got := ShellQuote(c.in); got != c.want {
			t.Errorf("ShellQuote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
