package auth

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// A request frame, byte for byte: length, id, hash length, hash, password.
func TestCheckRequestFrame(t *testing.T) {
	h, err := parsePasswordHash(testdeps.Bcrypt2ySecret)
	if err != nil {
		t.Fatal(err)
	}
	frame := appendCheckRequest(nil, 0x0102030405060708, h, []byte("pw"))
	want := "\x00\x00\x00\x48" + "\x01\x02\x03\x04\x05\x06\x07\x08" + "\x00\x3c" + testdeps.Bcrypt2ySecret + "pw"
	if string(frame) != want {
		t.Fatalf("frame\n%q, want\n%q", frame, want)
	}
	// argon2id goes as its PHC string, as the users file has it.
	h, err = parsePasswordHash(testdeps.Argon2idSecret)
	if err != nil {
		t.Fatal(err)
	}
	body, err := readCheckFrame(bytes.NewReader(appendCheckRequest(nil, 7, h, []byte("secret"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, hash, password, err := parseCheckRequest(body)
	if err != nil || id != 7 || string(hash) != testdeps.Argon2idSecret || string(password) != "secret" {
		t.Fatalf("parsed %d %q %q %v", id, hash, password, err)
	}
	if _, v := checkFrame(body); v != verdictMatch {
		t.Errorf("the child's verdict on the right password: %d, want a match", v)
	}
	if got := appendCheckReply(nil, 0x0102030405060708, verdictMatch); string(got) != "\x01\x02\x03\x04\x05\x06\x07\x08\x01" {
		t.Errorf("reply %q", got)
	}
	// A frame longer than the protocol allows is refused before any
	// memory is taken for it.
	if _, err := readCheckFrame(strings.NewReader("\x00\x02\x00\x00"), nil); !errors.Is(err, errCheckFrameTooLarge) {
		t.Errorf("a 128 KiB frame: %v", err)
	}
}

// Whatever the stream holds, the child's reader and parser neither panic
// nor take more than a frame's bound, and what they return lies within the
// frame.
func FuzzCheckFrames(f *testing.F) {
	h, _ := parsePasswordHash(testdeps.Bcrypt2ySecret)
	f.Add(appendCheckRequest(nil, 1, h, []byte("secret")))
	f.Add([]byte("\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff"))
	f.Add([]byte("\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x00\x00\x02ab"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		var buf []byte
		for {
			frame, err := readCheckFrame(r, buf)
			if err != nil {
				return
			}
			if len(frame) > maxCheckFrame {
				t.Fatalf("a frame of %d bytes", len(frame))
			}
			id, hash, password, err := parseCheckRequest(frame)
			if err == nil && checkRequestFixed+len(hash)+len(password) != len(frame) {
				t.Fatalf("id %d: hash %d and password %d bytes in a frame of %d", id, len(hash), len(password), len(frame))
			}
			buf = frame
		}
	})
}

// A checker without a child answers at once that it is down.
func TestCheckWithoutChildIsDown(t *testing.T) {
	c := newPasswordChecker("/nonexistent", metrics.NewSet(), discardLog(), nil)
	h, _ := parsePasswordHash(testdeps.Bcrypt2ySecret)
	if v := c.check(h, []byte("secret")); v != verdictDown {
		t.Fatalf("verdict %d, want down", v)
	}
	if _, err := c.spawn(); err == nil || !strings.Contains(err.Error(), "cannot start the password checker /nonexistent") {
		t.Errorf("spawning a missing program: %v", err)
	}
}

// A reply with the hello's id 0 after the hello is garbage: it must not
// land in a free slot, where the next check would take it for its own.
func TestReplyWithIdZeroIsGarbage(t *testing.T) {
	c := newPasswordChecker("/nonexistent", metrics.NewSet(), discardLog(), nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Write(appendCheckReply(nil, 0, verdictMatch))
	w.Close()
	if err := c.readVerdicts(&checkerChild{stdout: r}); err == nil || !strings.Contains(err.Error(), "answered garbage") {
		t.Errorf("readVerdicts: %v", err)
	}
	if n := len(c.slots[0].verdict); n != 0 {
		t.Errorf("slot 0 holds %d verdicts, want none", n)
	}
}
