package main

// tailBuffer keeps the last limit bytes written to it. A process that
// fails says why in its last lines, after whatever it printed while it ran; a
// buffer that kept the start would lose them to a long output.
type tailBuffer struct {
	limit int
	b     []byte // the kept bytes are its last limit (or all, when fewer)
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

// Write keeps p's end. b grows to twice limit before what it keeps moves
// to its front, so that a long output costs one copy of at most limit
// bytes per limit bytes written, not one per write.
func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.limit {
		t.b = append(t.b[:0], p[len(p)-t.limit:]...)
		return n, nil
	}
	if len(t.b)+len(p) > 2*t.limit {
		keep := min(len(t.b), t.limit-len(p))
		t.b = t.b[:copy(t.b, t.b[len(t.b)-keep:])]
	}
	t.b = append(t.b, p...)
	return n, nil
}

// String is the last limit bytes written.
func (t *tailBuffer) String() string {
	if len(t.b) > t.limit {
		return string(t.b[len(t.b)-t.limit:])
	}
	return string(t.b)
}
