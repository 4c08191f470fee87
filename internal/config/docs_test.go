package config

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The operator's guide lists every flag in a table under "## Flags", one
// row per flag (or per pair, such as -tls-cert, -tls-key), the names in
// the first cell as `-name`. A flag added, renamed or removed without
// that table changing fails here, so the guide cannot drift from -h.
func TestOperatingGuideListsEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := flagTableNames(t, string(doc))

	fs, _, _ := newFlagSet(new(Config))
	var defined []string
	fs.VisitAll(func(f *flag.Flag) { defined = append(defined, f.Name) })

	for _, name := range defined {
		if !slices.Contains(documented, name) {
			t.Errorf("-%s is a flag, and docs/operating.md's flag table has no row for it", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(defined, name) {
			t.Errorf("docs/operating.md's flag table documents -%s, which is no flag of northd", name)
		}
	}
}

var flagName = regexp.MustCompile("`-([a-z0-9-]+)`")

// flagTableNames reads the names in the first cell of each row of the
// table under "## Flags" in doc, each once.
func flagTableNames(t *testing.T, doc string) []string {
	t.Helper()
	_, section, found := strings.Cut(doc, "\n## Flags\n")
	if !found {
		t.Fatal(`docs/operating.md has no "## Flags" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var names []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`-") {
			continue // not a flag's row: text, the header, its rule
		}
		for _, m := range flagName.FindAllStringSubmatch(cells[1], -1) {
			if slices.Contains(names, m[1]) {
				t.Errorf("docs/operating.md's flag table has -%s twice", m[1])
			}
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		t.Fatal("docs/operating.md's flag table lists no flag: its rows start | `-name` |")
	}
	return names
}
