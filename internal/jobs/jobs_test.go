package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/sqlite"
)

func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start runs r until the test ends (or stop is called) and returns stop,
// which cancels Run and waits for it to return.
func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not return after its context was canceled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitState waits until the job is in state, failing after a while.
func waitState(t *testing.T, st store.Store, id, state string) *core.Job {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, err := st.GetJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == state {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: state %s (error %q), want %s", id, j.State, j.Error, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func enqueue(t *testing.T, st store.Store, j *core.Job) *core.Job {
	t.Helper()
	if err := st.EnqueueJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	return j
}

func fastOptions(owner string) Options {
	return Options{Owner: owner, Lease: 3 * time.Second, PollInterval: 50 * time.Millisecond, CancelCheck: 20 * time.Millisecond, Logger: quiet}
}

func TestOutcomes(t *testing.T) {
	st := newStore(t)
	r := New(st, fastOptions("w"))
	var got atomic.Value
	r.Register("ok", func(ctx context.Context, j *core.Job) error {
		got.Store(string(j.Payload))
		return nil
	})
	r.Register("fail", func(ctx context.Context, j *core.Job) error { return errors.New("dataset is empty") })
	r.Register("panic", func(ctx context.Context, j *core.Job) error { panic("oops") })
	start(t, r)
	cases := []struct {
		kind, state, errText string
	}{
		{"ok", core.JobSucceeded, ""},
		{"fail", core.JobFailed, "dataset is empty"},
		{"panic", core.JobFailed, "internal error: handler panicked: oops"},
		{"unknown", core.JobFailed, `no handler registered for job kind "unknown"`},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			j := enqueue(t, st, &core.Job{Kind: c.kind, Payload: []byte(`{"k":"` + c.kind + `"}`)})
			r.Notify()
			done := waitState(t, st, j.ID, c.state)
			if done.Error != c.errText {
				t.Fatalf("error text %q, want %q", done.Error, c.errText)
			}
		})
	}
	if got.Load() != `{"k":"ok"}` {
		t.Fatalf("handler saw payload %v", got.Load())
	}
}

// TestNotify: with a poll interval of an hour, Notify alone starts a job.
func TestNotify(t *testing.T) {
	st := newStore(t)
	opts := fastOptions("w")
	opts.PollInterval = time.Hour
	r := New(st, opts)
	r.Register("k", func(ctx context.Context, j *core.Job) error { return nil })
	start(t, r)
	time.Sleep(50 * time.Millisecond) // let Run make its first (empty) claim
	j := enqueue(t, st, &core.Job{Kind: "k"})
	r.Notify()
	waitState(t, st, j.ID, core.JobSucceeded)
}

// TestQueueConcurrencyAndOrder: a queue with concurrency 2 never runs more
// than 2 at once, a queue with concurrency 1 runs its jobs in creation
// order, and the two queues run side by side.
func TestQueueConcurrencyAndOrder(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if err := st.SetQueueConcurrency(ctx, "wide", 2); err != nil {
		t.Fatal(err)
	}
	if err := st.SetQueueConcurrency(ctx, "narrow", 1); err != nil {
		t.Fatal(err)
	}
	var (
		mu               sync.Mutex
		running, maxWide int
		narrowOrder      []string
		narrowRunning    int
		bad              error
	)
	r := New(st, fastOptions("w"))
	r.Register("k", func(ctx context.Context, j *core.Job) error {
		mu.Lock()
		if j.Queue == "wide" {
			running++
			maxWide = max(maxWide, running)
		} else {
			narrowRunning++
			if narrowRunning > 1 {
				bad = fmt.Errorf("narrow queue runs %d at once", narrowRunning)
			}
			narrowOrder = append(narrowOrder, j.ID)
		}
		mu.Unlock()
		time.Sleep(60 * time.Millisecond)
		mu.Lock()
		if j.Queue == "wide" {
			running--
		} else {
			narrowRunning--
		}
		mu.Unlock()
		return nil
	})
	var ids []string
	for i := range 6 {
		enqueue(t, st, &core.Job{ID: fmt.Sprintf("w%d", i), Kind: "k", Queue: "wide"})
		ids = append(ids, enqueue(t, st, &core.Job{ID: fmt.Sprintf("n%d", i), Kind: "k", Queue: "narrow"}).ID)
	}
	start(t, r)
	for i := range 6 {
		waitState(t, st, fmt.Sprintf("w%d", i), core.JobSucceeded)
		waitState(t, st, fmt.Sprintf("n%d", i), core.JobSucceeded)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Fatal(bad)
	}
	if maxWide != 2 {
		t.Fatalf("wide queue ran at most %d at once, want 2", maxWide)
	}
	if fmt.Sprint(narrowOrder) != fmt.Sprint(ids) {
		t.Fatalf("narrow queue order %v, want %v", narrowOrder, ids)
	}
}

// TestCancel: a cancel request cancels the handler's context with
// ErrCanceled, and the job ends canceled.
func TestCancel(t *testing.T) {
	st := newStore(t)
	r := New(st, fastOptions("w"))
	started := make(chan struct{})
	cause := make(chan error, 1)
	r.Register("long", func(ctx context.Context, j *core.Job) error {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	})
	start(t, r)
	j := enqueue(t, st, &core.Job{Kind: "long"})
	r.Notify()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("job did not start")
	}
	asked := time.Now()
	if _, err := st.RequestCancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-cause:
		if !errors.Is(c, ErrCanceled) {
			t.Fatalf("cause %v, want ErrCanceled", c)
		}
		t.Logf("handler canceled %v after the request", time.Since(asked))
	case <-time.After(15 * time.Second):
		t.Fatal("handler not canceled")
	}
	waitState(t, st, j.ID, core.JobCanceled)
}

// TestShutdownReleasesAndResumes: stopping the runner cancels handlers with
// ErrShutdown and queues their jobs again with the same attempt; a new
// runner resumes them.
func TestShutdownReleasesAndResumes(t *testing.T) {
	st := newStore(t)
	r1 := New(st, fastOptions("first"))
	started := make(chan struct{})
	cause := make(chan error, 1)
	r1.Register("long", func(ctx context.Context, j *core.Job) error {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return fmt.Errorf("checkpointed: %w", ctx.Err())
	})
	stop := start(t, r1)
	j := enqueue(t, st, &core.Job{Kind: "long"})
	r1.Notify()
	<-started
	stop()
	if c := <-cause; !errors.Is(c, ErrShutdown) {
		t.Fatalf("cause %v, want ErrShutdown", c)
	}
	got := waitState(t, st, j.ID, core.JobQueued)
	if got.LeaseOwner != "" {
		t.Fatalf("released job still leased: %+v", got)
	}

	r2 := New(st, fastOptions("second"))
	var attempt atomic.Int64
	r2.Register("long", func(ctx context.Context, j *core.Job) error {
		attempt.Store(int64(j.Attempt))
		return nil
	})
	start(t, r2)
	waitState(t, st, j.ID, core.JobSucceeded)
	if attempt.Load() != 1 {
		t.Fatalf("resumed with attempt %d, want 1 (a graceful release is not a new attempt)", attempt.Load())
	}
}

// TestCrashRecovery: a job claimed by a runner that died (its lease
// expires unrenewed) is claimed again by another runner, attempt 2.
func TestCrashRecovery(t *testing.T) {
	st := newStore(t)
	j := enqueue(t, st, &core.Job{Kind: "k"})
	if _, err := st.ClaimJob(context.Background(), "dead", time.Now(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r := New(st, fastOptions("alive"))
	var attempt atomic.Int64
	r.Register("k", func(ctx context.Context, j *core.Job) error {
		attempt.Store(int64(j.Attempt))
		return nil
	})
	start(t, r)
	done := waitState(t, st, j.ID, core.JobSucceeded)
	if attempt.Load() != 2 || done.LeaseOwner != "alive" {
		t.Fatalf("reclaimed job: attempt %d, owner %s", attempt.Load(), done.LeaseOwner)
	}
}

// TestLeaseRenewal: a job running for several lease periods keeps its
// lease, so a second runner polling the same queue never takes it.
func TestLeaseRenewal(t *testing.T) {
	st := newStore(t)
	var calls atomic.Int64
	h := func(ctx context.Context, j *core.Job) error {
		calls.Add(1)
		select {
		case <-time.After(3 * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	opts := fastOptions("a")
	opts.Lease = time.Second // renewed every 1/3 s; generous for a loaded CI machine
	a := New(st, opts)
	a.Register("k", h)
	opts.Owner = "b"
	b := New(st, opts)
	b.Register("k", h)
	j := enqueue(t, st, &core.Job{Kind: "k"})
	start(t, a)
	time.Sleep(100 * time.Millisecond)
	start(t, b)
	done := waitState(t, st, j.ID, core.JobSucceeded)
	if calls.Load() != 1 || done.Attempt != 1 {
		t.Fatalf("handler ran %d times, attempt %d: the lease was not renewed", calls.Load(), done.Attempt)
	}
}

// TestLeaseLost: when another worker takes the job over, the handler's
// context is canceled with ErrLeaseLost and this runner records nothing.
func TestLeaseLost(t *testing.T) {
	st := newStore(t)
	r := New(st, fastOptions("w"))
	started := make(chan struct{})
	cause := make(chan error, 1)
	r.Register("k", func(ctx context.Context, j *core.Job) error {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil // must not be recorded as success
	})
	start(t, r)
	j := enqueue(t, st, &core.Job{Kind: "k"})
	r.Notify()
	<-started
	// A thief whose clock is past the lease reclaims the job.
	stolen, err := st.ClaimJob(context.Background(), "thief", time.Now().Add(time.Hour), time.Hour)
	if err != nil || stolen.ID != j.ID {
		t.Fatalf("steal: %+v, %v", stolen, err)
	}
	select {
	case c := <-cause:
		if !errors.Is(c, ErrLeaseLost) {
			t.Fatalf("cause %v, want ErrLeaseLost", c)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("handler not canceled after losing its lease")
	}
	time.Sleep(100 * time.Millisecond)
	got, _ := st.GetJob(context.Background(), j.ID)
	if got.State != core.JobRunning || got.LeaseOwner != "thief" {
		t.Fatalf("job after lease loss: %+v", got)
	}
}

// TestShutdownGrace: a handler that ignores its context does not hold Run
// past ShutdownGrace.
func TestShutdownGrace(t *testing.T) {
	st := newStore(t)
	opts := fastOptions("w")
	opts.ShutdownGrace = 200 * time.Millisecond
	r := New(st, opts)
	started := make(chan struct{})
	release := make(chan struct{})
	r.Register("stubborn", func(ctx context.Context, j *core.Job) error {
		close(started)
		<-release
		return nil
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	enqueue(t, st, &core.Job{Kind: "stubborn"})
	r.Notify()
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run waited past ShutdownGrace")
	}
	if r.Running() != 1 {
		t.Fatalf("Running() = %d, want the stubborn handler", r.Running())
	}
}

// flakyStore fails the first FinishJob calls, as a database might under load.
type flakyStore struct {
	store.Store
	failures atomic.Int64
}

func (f *flakyStore) FinishJob(ctx context.Context, id, owner, state, errText string) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("database is locked")
	}
	return f.Store.FinishJob(ctx, id, owner, state, errText)
}

// TestFinishRetried: a transient failure to record the outcome is retried.
func TestFinishRetried(t *testing.T) {
	st := newStore(t)
	fs := &flakyStore{Store: st}
	fs.failures.Store(2)
	r := New(fs, fastOptions("w"))
	r.Register("k", func(ctx context.Context, j *core.Job) error { return nil })
	start(t, r)
	j := enqueue(t, st, &core.Job{Kind: "k"})
	r.Notify()
	waitState(t, st, j.ID, core.JobSucceeded)
}

// TestMaxRunning: a runner with MaxRunning 2 on a queue of concurrency 4
// runs only 2 of 4 ready jobs and leaves the rest queued; a second runner
// takes them.
func TestMaxRunning(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if err := st.SetQueueConcurrency(ctx, "q", 4); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	byOwner := map[string]int{}
	handler := func(ctx context.Context, j *core.Job) error {
		mu.Lock()
		byOwner[j.LeaseOwner]++
		mu.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	opts := fastOptions("a")
	opts.MaxRunning = 2
	a := New(st, opts)
	a.Register("k", handler)
	for i := range 4 {
		enqueue(t, st, &core.Job{ID: fmt.Sprintf("j%d", i), Kind: "k", Queue: "q"})
	}
	start(t, a)
	waitCount := func(state string, want int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			n, err := st.CountJobs(ctx, "q", state)
			if err != nil {
				t.Fatal(err)
			}
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d jobs %s, want %d", n, state, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitCount(core.JobRunning, 2)
	time.Sleep(300 * time.Millisecond) // several polls: a still claims nothing
	if n, _ := st.CountJobs(ctx, "q", core.JobQueued); n != 2 {
		t.Fatalf("%d jobs queued with runner a capped at 2, want 2", n)
	}
	if got := a.Running(); got != 2 {
		t.Fatalf("runner a runs %d jobs, want 2", got)
	}
	b := New(st, fastOptions("b"))
	b.Register("k", handler)
	start(t, b)
	waitCount(core.JobRunning, 4)
	// A job is running (claimed) in the store before its handler starts:
	// wait for the handlers too.
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		na, nb := byOwner["a"], byOwner["b"]
		mu.Unlock()
		if na+nb == 4 {
			if na != 2 || nb != 2 {
				t.Errorf("jobs by runner a:%d b:%d, want a:2 b:2", na, nb)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handlers started: a:%d b:%d, want 4 in all", na, nb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	waitCount(core.JobSucceeded, 4)
}
