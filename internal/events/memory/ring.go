package memory

// ring is a queue held in blocks of ringBlock entries, taken as it fills
// and given back as it empties, so that a log with few events holds little
// memory and one that grows never copies what it holds: a buffer doubled
// and copied at 65,536 events held the log's lock, and every publish and
// stream behind it, for milliseconds. Its callers bound its length.
type ring[T any] struct {
	blocks [][]T // blocks[0][start] is the oldest
	start  int
	n      int
	spare  []T // the last block emptied, kept for the next one needed
}

// ringBlock is the entries of one block: an event's are about 140 bytes,
// so a block of them is about 35 KB, and a log of 100,000 about 400.
const ringBlock = 256

func (r *ring[T]) len() int { return r.n }

// at is the i-th oldest.
func (r *ring[T]) at(i int) *T {
	j := r.start + i
	return &r.blocks[j/ringBlock][j%ringBlock]
}

// push appends v.
func (r *ring[T]) push(v T) {
	if j := r.start + r.n; j/ringBlock == len(r.blocks) {
		b := r.spare
		if b == nil {
			b = make([]T, ringBlock)
		}
		r.spare = nil
		r.blocks = append(r.blocks, b)
	}
	*r.at(r.n) = v
	r.n++
}

// pop removes the oldest, clearing its slot so that its memory may go.
func (r *ring[T]) pop() T {
	p := r.at(0)
	v := *p
	var zero T
	*p = zero
	r.start++
	r.n--
	if r.start == ringBlock || r.n == 0 {
		// The first block is empty (or all are): it goes, the rest
		// move up, and it is kept for the next block needed.
		r.spare = r.blocks[0]
		n := copy(r.blocks, r.blocks[1:])
		r.blocks[n] = nil
		r.blocks = r.blocks[:n]
		r.start = 0
	}
	return v
}
