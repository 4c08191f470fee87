package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNorthdConfigurations starts the northd servers the pairs use, as
// compare starts them, with the users file and certificate compare
// makes: each must serve the contract (over HTTPS for northd-tls), and the
// verify route's login must give a token that verifies. It builds northd
// from the repository root, so it is skipped with -short.
func TestNorthdConfigurations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs northd")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "northd"), ".")
	build.Dir = "../../.." // the repository root: the server's module
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building northd: %v\n%s", err, out)
	}
	auth, err := makeAuthFiles()
	if err != nil {
		t.Fatal(err)
	}
	defer auth.remove()
	o := &options{bin: bin, auth: auth, serverProcs: 1}
	for _, name := range []string{"northd", "northd-users", "northd-tls"} {
		t.Run(name, func(t *testing.T) {
			var spec serverSpec
			for _, s := range specs {
				if s.name == name {
					spec = s
				}
			}
			r, skip, err := start(o, spec)
			if err != nil || skip != "" {
				t.Fatalf("start: %v %s", err, skip)
			}
			defer r.stop()
			if want := map[bool]string{true: "https://", false: "http://"}[spec.tls]; !strings.HasPrefix(r.baseURL(), want) {
				t.Errorf("base URL %s, want %s…", r.baseURL(), want)
			}
			notes, err := checkContract(r)
			if err != nil {
				t.Fatalf("contract: %v\n%s", err, r.exitReport())
			}
			if len(notes) > 0 {
				t.Errorf("departs from the contract: %v", notes)
			}
			if spec.tls && !strings.HasPrefix(r.tlsInfo, "TLS 1.") {
				t.Errorf("TLS info %q", r.tlsInfo)
			}
			args, err := loginForVerify(r)
			if err != nil || len(args) != 1 || len(args[0]) != 32 {
				t.Fatalf("loginForVerify = %q, %v", args, err)
			}
			// A second login from the verify ip replaces the first token.
			again, err := loginForVerify(r)
			if err != nil || again[0] == args[0] {
				t.Fatalf("second loginForVerify = %q, %v", again, err)
			}
		})
	}
	if _, err := os.Stat(auth.users); err != nil {
		t.Errorf("users file gone before the end: %v", err)
	}
}
