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
	for tok := range seen {
		if tok[6]>>4 != 4 || tok[8]>>6 != 2 {
			t.Fatalf("token %x is not a version 4, RFC 4122 variant UUID", tok)
		}
		break
	}
	if n := testing.AllocsPerRun(100, func() { newToken() }); n != 0 {
		t.Errorf("newToken allocates %v times", n)
	}
}
