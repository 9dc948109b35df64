package tensor

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Team runs parallel loops on a fixed set of goroutines that stay awake
// for a while between loops. Decoding one token runs some 150 short
// parallel products (each well under a millisecond); starting goroutines
// for each of them leaves the second core idle while its thread is woken
// (on a virtual machine a halted vCPU takes tens of microseconds to wake,
// as long as a product), so that two threads read the weights barely
// faster than one. A Team's workers instead spin for up to spinFor after
// each loop, waiting for the next, and only then park.
//
// A Team is used by one goroutine at a time (Run is not reentrant and
// must not be called concurrently); Close stops its workers.
type Team struct {
	threads int
	spin    time.Duration

	gen      atomic.Uint64 // bumped to publish a task (or Close)
	pending  atomic.Int64  // workers still running the current task
	sleeping atomic.Int64  // workers parked on wake
	wake     chan struct{}
	closed   atomic.Bool

	// The current task, written by Run before gen is bumped.
	n int
	f func(lo, hi int)
}

// spinFor is how long a worker keeps polling for the next loop before it
// parks: longer than the gaps between the products of one decoding step,
// short enough that an idle Team costs nothing noticeable.
const spinFor = 200 * time.Microsecond

// NewTeam starts a Team of threads goroutines, the caller of Run counting
// as one (threads ≤ 1: Run calls f on the caller alone).
func NewTeam(threads int) *Team {
	t := &Team{threads: max(1, threads), spin: spinFor}
	t.wake = make(chan struct{}, t.threads)
	for w := 0; w < t.threads-1; w++ {
		go t.worker(w)
	}
	return t
}

// Threads returns the number of goroutines Run splits a loop over.
func (t *Team) Threads() int { return t.threads }

// Run calls f(lo, hi) on contiguous, disjoint ranges covering [0, n), at
// most Threads of them at once, and returns when all have returned. The
// split depends on n and Threads alone.
func (t *Team) Run(n int, f func(lo, hi int)) {
	parts := min(t.threads, n)
	if parts <= 1 || t.closed.Load() {
		if n > 0 {
			f(0, n)
		}
		return
	}
	t.n, t.f = n, f
	t.pending.Store(int64(t.threads - 1))
	t.gen.Add(1)
	for s := t.sleeping.Load(); s > 0; s-- {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	// The caller takes the last range.
	lo, hi := t.split(t.threads - 1)
	if lo < hi {
		f(lo, hi)
	}
	for i := 0; t.pending.Load() > 0; i++ {
		if i%64 == 63 {
			runtime.Gosched()
		}
	}
	t.f = nil
}

// split returns worker w's range of the current task.
func (t *Team) split(w int) (lo, hi int) {
	return t.n * w / t.threads, t.n * (w + 1) / t.threads
}

// worker runs range w of every task published after generation 0 (the
// Team's start: the goroutine may first run after a task is published)
// until Close.
func (t *Team) worker(w int) {
	var last uint64
	for {
		// Spin for the next task, then park.
		start := time.Now()
		for i := 0; t.gen.Load() == last; i++ {
			if i%256 != 255 {
				continue
			}
			if time.Since(start) < t.spin {
				runtime.Gosched()
				continue
			}
			t.sleeping.Add(1)
			if t.gen.Load() == last {
				<-t.wake
			}
			t.sleeping.Add(-1)
			start = time.Now()
		}
		last = t.gen.Load()
		if t.closed.Load() {
			return
		}
		if lo, hi := t.split(w); lo < hi {
			t.f(lo, hi)
		}
		t.pending.Add(-1)
	}
}

// Close stops the workers; Run then runs loops on the caller alone.
// Close is idempotent and must not be called while Run is running.
func (t *Team) Close() {
	if t.closed.Swap(true) {
		return
	}
	t.gen.Add(1)
	for w := 0; w < t.threads; w++ {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}
