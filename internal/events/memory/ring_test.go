package memory

import (
	"math/rand/v2"
	"testing"
)

// The ring is a queue: against a slice doing the same pushes and pops, it
// holds the same entries in the same order, across many blocks, and a
// popped slot is cleared.
func TestRingIsAQueue(t *testing.T) {
	var r ring[*int]
	var model []*int
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20 * ringBlock {
		// Mostly pushes for a while, then mostly pops, then even:
		// it grows to several blocks, drains to none, and churns.
		push := rng.IntN(10) < [...]int{8, 2, 5}[step*3/(20*ringBlock)]
		if push || len(model) == 0 {
			v := new(int)
			*v = step
			r.push(v)
			model = append(model, v)
		} else {
			slot := r.at(0)
			if got := r.pop(); got != model[0] {
				t.Fatalf("step %d: popped %d, want %d", step, *got, *model[0])
			}
			if *slot != nil {
				t.Fatalf("step %d: the popped slot still holds %d", step, **slot)
			}
			model = model[1:]
		}
		if r.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, r.len(), len(model))
		}
		if len(model) > 0 && (r.at(0) == nil || *r.at(0) != model[0] || *r.at(len(model) - 1) != model[len(model)-1]) {
			t.Fatalf("step %d: the oldest or newest is not the model's", step)
		}
		if want := (r.start + r.n + ringBlock - 1) / ringBlock; len(r.blocks) != want {
			t.Fatalf("step %d: %d blocks for %d entries from %d, want %d", step, len(r.blocks), r.n, r.start, want)
		}
	}
	for i, v := range model {
		if *r.at(i) != v {
			t.Fatalf("entry %d is not the model's", i)
		}
	}
}

// A ring that stays at about its size takes no memory as it churns: the
// block it empties is the next one it fills, and nothing is copied.
func TestRingChurnAllocatesNothing(t *testing.T) {
	var r ring[int]
	for i := range 3 * ringBlock {
		r.push(i)
	}
	if n := testing.AllocsPerRun(10, func() {
		for i := range ringBlock {
			r.pop()
			r.push(i)
		}
	}); n != 0 {
		t.Errorf("%v allocations per %d pops and pushes, want 0", n, ringBlock)
	}
}
