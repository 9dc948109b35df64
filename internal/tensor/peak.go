package tensor

import (
	"runtime"
	"sync"
	"time"
)

// MeasurePeakGFLOPS measures the machine's float32 FMA throughput in
// GFLOP/s with kernel k's vector width on threads goroutines at once
// (each locked to an OS thread), running independent FMA chains for about
// d in total. It returns 0 when k is the portable kernel, which has no FMA
// loop, or when threads or d is not positive. The best of three rounds is
// reported, so a busy machine lowers the result less.
func MeasurePeakGFLOPS(k Kernel, threads int, d time.Duration) float64 {
	if threads <= 0 || d <= 0 {
		return 0
	}
	loop, flopsPerIter := fmaLoopFor(k)
	if loop == nil {
		return 0
	}
	// Calibrate the iteration count for one round of about d/3.
	iters := 1 << 16
	for {
		start := time.Now()
		loop(iters)
		if el := time.Since(start); el > d/30 || iters > 1<<40 {
			iters = int(float64(iters) * float64(d/3) / float64(max(el, time.Microsecond)))
			break
		}
		iters *= 4
	}
	iters = max(iters, 1)
	best := 0.0
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		start := time.Now()
		for t := 0; t < threads; t++ {
			wg.Go(func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				loop(iters)
			})
		}
		wg.Wait()
		sec := time.Since(start).Seconds()
		g := float64(iters) * flopsPerIter * float64(threads) / sec / 1e9
		best = max(best, g)
	}
	return best
}
