package main

import (
	"sync"
	"testing"
)

func TestTokensAreVersion4AndDoNotRepeat(t *testing.T) {
	const perWorker, workers = 20000, 4
	var mu sync.Mutex
	seen := make(map[[16]byte]bool, perWorker*workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([][16]byte, 0, perWorker)
			for i := 0; i < perWorker; i++ {
				local = append(local, newToken())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, tok := range local {
				if seen[tok] {
					t.Errorf("token %x repeated", tok)
				}
				seen[tok] = true
			}
		}()
	}
	wg.Wait()
	if len(seen) != perWorker*workers {
		t.Fatalf("%d distinct tokens, want %d", len(seen), perWorker*workers)
	}
	bad := 0
	for tok := range seen {
		if tok[6]>>4 != 4 || tok[8]>>6 != 2 {
			if bad++; bad <= 5 {
				t.Errorf("token %x is not a version 4, RFC 4122 variant UUID", tok)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tokens are not version 4, RFC 4122 variant UUIDs", bad, len(seen))
	}
}
