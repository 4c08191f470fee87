package auth

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"northd/internal/testdeps"
)

func TestParsePasswordHash(t *testing.T) {
	hint := "; make one with `northd hash-password` (argon2id) or `htpasswd -nB USER` (bcrypt)"
	tests := []struct {
		hash    string
		wantErr string // "" for accepted
	}{
		{testdeps.Bcrypt2ySecret, ""},
		{`$2b$04$vgdcp5bS5tKtwIcHpEWFDO0FgL1/SnStQ2zAcgz.Bz5t10mk6MtxO`, ""},
		{`$2a$04$vgdcp5bS5tKtwIcHpEWFDO0FgL1/SnStQ2zAcgz.Bz5t10mk6MtxO`, ""},
		{testdeps.Argon2idSecret, ""},
		{`$2y$04$short`, "malformed bcrypt hash" + hint},
		{`$2y$99$vgdcp5bS5tKtwIcHpEWFDO0FgL1/SnStQ2zAcgz.Bz5t10mk6MtxO`, "malformed bcrypt hash" + hint},
		{`$apr1$Qm5ySfvx$rJQ2X8ZzMmY3vP3oWlF0Q.`, "MD5 hashes are too fast to resist guessing" + hint},
		{`$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0`, "MD5 hashes are too fast to resist guessing" + hint},
		{`{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=`, "SHA-1 hashes are unsalted and too fast to resist guessing" + hint},
		{`$5$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/`, "SHA-crypt hashes are not accepted" + hint},
		{`$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/`, "SHA-crypt hashes are not accepted" + hint},
		{`$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`, "argon2i and argon2d are not accepted, only argon2id" + hint},
		{`$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E`, "unknown hash format" + hint},
		{`rl.3StKT.4T8M`, "DES crypt hashes are too weak" + hint},
		{`secret`, "not a password hash (a plain-text password?)" + hint},
		{``, "not a password hash (a plain-text password?)" + hint},
		{`$argon2id$v=16$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`, "malformed argon2id hash (want version v=19)" + hint},
		{`$argon2id$v=19$t=1,m=8,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`, "malformed argon2id hash (want m=…,t=…,p=… in that order)" + hint},
		{`$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`, "malformed argon2id hash (t must be a positive number)" + hint},
		{`$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`, "malformed argon2id hash (m must be at most 1048576 KiB)" + hint},
		{`$argon2id$v=19$m=8,t=1,p=1$c2FsdA$WHwbVkQ5XzAMaltcqwxy+X9v0VxYTVTjS9BRTrowawM`, "malformed argon2id hash (salt must be at least 8 bytes of unpadded base64)" + hint},
		{`$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$WHwbVkQ5XzAMaltc`, "malformed argon2id hash (hash must be at least 16 bytes of unpadded base64)" + hint},
		{`$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0`, "malformed argon2id hash (want $argon2id$v=19$m=…,t=…,p=…$salt$hash)" + hint},
	}
	for _, tt := range tests {
		h, err := parsePasswordHash(tt.hash)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("parsePasswordHash(%q): %v", tt.hash, err)
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("parsePasswordHash(%q) = %v, want error %q", tt.hash, err, tt.wantErr)
		case err == nil:
			if !h.matches([]byte("secret")) || h.matches([]byte("Secret")) {
				t.Errorf("hash %q: secret matches %v, Secret matches %v; want true, false", tt.hash, h.matches([]byte("secret")), h.matches([]byte("Secret")))
			}
		}
	}
}

func TestLoadUsersRefusesNamingFileAndLine(t *testing.T) {
	tests := []struct {
		content string
		want    string // after "users file PATH"
	}{
		{testdeps.TestUsersHeader + "alice:" + testdeps.Bcrypt2ySecret + "\nbob:$apr1$Qm5ySfvx$rJQ2X8ZzMmY3vP3oWlF0Q.\n", " line 4: MD5 hashes are too fast"},
		{testdeps.TestUsersHeader + "alice\n", " line 3: want username:hash"},
		{testdeps.TestUsersHeader + ":" + testdeps.Bcrypt2ySecret + "\n", " line 3: the username is empty"},
		{"alice:" + testdeps.Bcrypt2ySecret + "\nalice:" + testdeps.Argon2idSecret + "\n", ` line 2: user "alice" is already on line 1`},
		{strings.Repeat("u", 257) + ":" + testdeps.Bcrypt2ySecret + "\n", " line 1: the username is longer than 256 bytes"},
		{testdeps.TestUsersHeader, ": it has no users; add username:hash lines"},
		{"bob:secret\n", " line 1: not a password hash (a plain-text password?)"},
		{"alice:" + testdeps.Bcrypt2ySecret + "\n bob:" + testdeps.Bcrypt2ySecret + "\n", ` line 2: the username " bob" starts or ends with white space, which no login would send; remove it`},
		{"bob\t:" + testdeps.Bcrypt2ySecret + "\n", ` line 1: the username "bob\t" starts or ends with white space, which no login would send; remove it`},
	}
	for _, tt := range tests {
		path := testdeps.WriteUsersFile(t, tt.content)
		_, _, err := loadUsers(path)
		if err == nil || !strings.HasPrefix(err.Error(), "users file "+path+tt.want) {
			t.Errorf("loadUsers(%.50q) = %v, want users file %s%s…", tt.content, err, path, tt.want)
		}
	}
	if _, _, err := loadUsers(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "cannot open it") {
		t.Errorf("loading a missing file: %v", err)
	}
}

// A users file saved with a UTF-8 byte order mark (as some Windows
// editors do) loads: the mark is not part of the first username.
func TestLoadUsersStripsByteOrderMark(t *testing.T) {
	table, _, err := loadUsers(testdeps.WriteUsersFile(t, "\uFEFFalice:"+testdeps.Bcrypt2ySecret+"\nbob:"+testdeps.Argon2idSecret+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, known := table.lookup([]byte("alice")); !known || len(table.byName) != 2 {
		t.Errorf("users %v, want alice and bob", table.byName)
	}
	// Elsewhere it is no mark, and refused like any other white space.
	if _, _, err := loadUsers(testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n\uFEFFbob:"+testdeps.Argon2idSecret+"\n")); err == nil || !strings.Contains(err.Error(), "line 2: the username") {
		t.Errorf("a mark on line 2: %v", err)
	}
}

func TestLoadUsersWarns(t *testing.T) {
	path := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\r\nbob:"+testdeps.Argon2idSecret+"\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	table, warnings, err := loadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"users file " + path + " is readable by every user of this machine; chmod o-r it",
		"users file " + path + " line 1: bcrypt cost 4 is below 10; consider htpasswd -nB -C 12 USER",
		"users file " + path + " line 2: argon2id m=8,t=1 is below OWASP's m=19456,t=2; consider northd hash-password",
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if len(table.byName) != 2 {
		t.Fatalf("%d users, want 2", len(table.byName))
	}
	// The dummy is the costlier of the two (bcrypt cost 4, by far: the
	// argon2id user has m=8,t=1), and matches no password anyone knows.
	h, known := table.lookup([]byte("nobody"))
	if known || h.bcrypt == nil || string(h.bcrypt[:7]) != "$2a$04$" || h.matches([]byte("secret")) {
		t.Errorf("dummy for an unknown user: known %v, hash %q", known, h.bcrypt)
	}
}

func TestHashPasswordCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := RunHashPassword(nil, strings.NewReader("s\u00e9cret pass\r\nignored\n"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(out.String(), "\n")
	if !strings.HasPrefix(line, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("hash-password printed %q", out.String())
	}
	h, err := parsePasswordHash(line)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.salt) != 16 || len(h.key) != 32 || !h.matches([]byte("s\u00e9cret pass")) || h.matches([]byte("s\u00e9cret pass\r")) {
		t.Errorf("hash %q does not check the password read", line)
	}
	for _, in := range []string{"", "\n", strings.Repeat("p", 4097) + "\n"} {
		if err := RunHashPassword(nil, strings.NewReader(in), &out, &errOut); err == nil {
			t.Errorf("hash-password accepted %.20q", in)
		}
	}
	if err := RunHashPassword([]string{"secret"}, strings.NewReader("x\n"), &out, &errOut); err == nil || !strings.Contains(err.Error(), "reads the password from standard input") {
		t.Errorf("a password on the command line: %v", err)
	}
	// The operator's mistakes are usage errors, on which northd exits 2;
	// a failure to read is not.
	for _, in := range []struct {
		args  []string
		stdin io.Reader
		usage bool
	}{
		{[]string{"secret"}, strings.NewReader("x\n"), true},
		{nil, strings.NewReader("\n"), true},
		{nil, strings.NewReader(strings.Repeat("p", 4097)), true},
		{nil, iotest.ErrReader(errors.New("disk on fire")), false},
	} {
		err := RunHashPassword(in.args, in.stdin, &out, &errOut)
		if _, usage := errors.AsType[*UsageError](err); err == nil || usage != in.usage {
			t.Errorf("hash-password %q: %v, a usage error %v; want one %v", in.args, err, usage, in.usage)
		}
	}
}
