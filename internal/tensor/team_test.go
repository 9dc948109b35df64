package tensor

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestTeam runs many loops of every size on Teams of 1 to 4 goroutines,
// with pauses longer than the spin so that workers park and are woken,
// and checks that every index is visited exactly once per loop.
func TestTeam(t *testing.T) {
	for threads := 1; threads <= 4; threads++ {
		tm := NewTeam(threads)
		if tm.Threads() != threads {
			t.Fatalf("Threads() = %d, want %d", tm.Threads(), threads)
		}
		for iter := 0; iter < 300; iter++ {
			n := iter % 37
			seen := make([]atomic.Int32, n)
			tm.Run(n, func(lo, hi int) {
				if lo < 0 || hi > n || lo >= hi {
					t.Errorf("threads %d, n %d: range [%d, %d)", threads, n, lo, hi)
					return
				}
				for i := lo; i < hi; i++ {
					seen[i].Add(1)
				}
			})
			for i := range seen {
				if c := seen[i].Load(); c != 1 {
					t.Fatalf("threads %d, n %d: index %d visited %d times", threads, n, i, c)
				}
			}
			if iter%50 == 49 {
				time.Sleep(2 * spinFor) // let the workers park
			}
		}
		tm.Close()
		tm.Close()
		ran := 0
		tm.Run(5, func(lo, hi int) { ran += hi - lo }) // on the caller after Close
		if ran != 5 {
			t.Fatalf("Run after Close covered %d of 5", ran)
		}
	}
}
