// Package jobs runs Gantry's durable background jobs (fine-tuning a model,
// bringing a cluster up) from the queue in the store. A Runner claims
// ready jobs, runs each in a goroutine with the handler registered for its
// kind, renews its lease while it runs, cancels it when a cancel is
// requested, and records how it ended. A job whose process died is claimed
// again once its lease expires; on shutdown, running jobs are handed back
// to the queue so the next start resumes them.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// Handler does one job's work. It returns nil when the work is done (the
// job succeeds) or an error saying why it failed. When ctx is canceled,
// context.Cause(ctx) says why: ErrCanceled (a user asked; the job ends
// canceled), ErrShutdown (the process is stopping: checkpoint and return
// ctx's error; the job is queued again and the next start resumes it), or
// ErrLeaseLost (another worker owns the job now: stop without side effects).
// A handler interrupted this way must not return nil, which would record
// the job as succeeded.
type Handler func(ctx context.Context, j *core.Job) error

// Causes of a handler context's cancellation; test with errors.Is on
// context.Cause(ctx).
var (
	ErrCanceled  = errors.New("job cancel requested")
	ErrShutdown  = errors.New("job runner shutting down")
	ErrLeaseLost = errors.New("job lease lost to another worker")
)

// Options configure a Runner. Zero fields take the defaults shown.
type Options struct {
	// Owner names this runner in job leases; default host-pid-random. Two
	// runners must never share one.
	Owner string
	// Lease is how long a claim lasts without renewal (default 30s); the
	// runner renews it every Lease/3. A crashed runner's jobs are claimed
	// again after at most this long.
	Lease time.Duration
	// PollInterval is how often the queue is polled for ready jobs
	// (default 1s); Notify wakes the runner sooner.
	PollInterval time.Duration
	// CancelCheck is how often a running job's cancel flag is read
	// (default 500ms).
	CancelCheck time.Duration
	// Logger receives the runner's logs (default slog.Default()).
	Logger *slog.Logger
	// ShutdownGrace bounds how long Run waits, once its context is done,
	// for handlers to return (0: as long as they take). A job whose
	// handler outlives it keeps its lease until the lease expires, and is
	// then claimed again by the next runner as a new attempt.
	ShutdownGrace time.Duration
	// LockDir, when set, is a directory (one per data directory) where
	// the runner keeps a lock file proving it alive, and where, on start,
	// it finds the runners of this host that died (SIGKILL, a crash) and
	// ends the leases of their jobs at once instead of waiting for them
	// to expire. See owners.go. Owner must then be usable as a file name.
	LockDir string
	// Host names this machine in lock files (default os.Hostname()); a
	// dead runner is reclaimed early only by a runner of the same Host.
	Host string
	// MaxRunning caps how many jobs this runner runs at once (0 or less:
	// no cap, only the queues' concurrency limits). The runner claims
	// only while it runs fewer, so that several workers sharing a queue
	// each take a share of a cluster's units instead of one taking all.
	MaxRunning int
}

// Runner claims and runs jobs. Register handlers, then call Run once.
type Runner struct {
	st   store.Jobs
	opts Options
	wake chan struct{}

	mu       sync.Mutex
	handlers map[string]Handler
	running  map[string]context.CancelCauseFunc
}

// New returns a Runner on st's job queue.
func New(st store.Jobs, opts Options) *Runner {
	if opts.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.CancelCheck <= 0 {
		opts.CancelCheck = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	return &Runner{
		st:       st,
		opts:     opts,
		wake:     make(chan struct{}, 1),
		handlers: map[string]Handler{},
		running:  map[string]context.CancelCauseFunc{},
	}
}

// Owner returns the name this runner claims jobs under.
func (r *Runner) Owner() string { return r.opts.Owner }

// Register sets the handler for jobs of a kind, replacing any before it.
// A job of a kind without a handler fails when claimed.
func (r *Runner) Register(kind string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[kind] = h
}

// Notify wakes the runner to look for ready jobs now; call it after
// enqueueing (or after raising a queue's concurrency). It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Running returns how many jobs this runner is running now.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// Run claims and runs jobs until ctx is done. Then it cancels the running
// handlers with cause ErrShutdown, waits for them to return (see
// ShutdownGrace), puts their jobs back in the queue, and returns nil.
// With LockDir set, it first reclaims the jobs of this host's dead
// runners and locks its own owner file; failing to lock is an error
// (except where the platform has no file locks: then it runs without).
// Call it once.
func (r *Runner) Run(ctx context.Context) error {
	log := r.opts.Logger.With("owner", r.opts.Owner)
	if dir := r.opts.LockDir; dir != "" {
		owners, n, err := r.reclaimDead(ctx, dir, r.opts.Host)
		if err != nil {
			log.Error("reclaim the jobs of dead runners", "err", err)
		}
		if owners > 0 {
			log.Info("reclaimed the jobs of dead runners", "runners", owners, "jobs", n)
		}
		lock, err := lockOwner(dir, r.opts.Owner, r.opts.Host)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			log.Warn("no job owner lock on this platform: a crashed runner's jobs wait for their leases", "err", err)
		case err != nil:
			return err
		default:
			clean := false
			defer func() {
				if clean {
					lock.release()
				}
				// Else handlers still run under this owner's leases:
				// keep the lock (until the process exits) so that
				// nobody reclaims their jobs early.
			}()
			defer func() { clean = r.Running() == 0 }()
		}
	}
	log.Info("job runner started", "lease", r.opts.Lease, "poll", r.opts.PollInterval, "maxRunning", r.opts.MaxRunning)
	ticker := time.NewTicker(r.opts.PollInterval)
	defer ticker.Stop()
	var wg sync.WaitGroup
	for {
		r.claimReady(ctx, &wg, log)
		select {
		case <-ctx.Done():
			r.mu.Lock()
			n := len(r.running)
			for _, cancel := range r.running {
				cancel(ErrShutdown)
			}
			r.mu.Unlock()
			log.Info("job runner stopping", "running", n)
			if r.waitHandlers(&wg) {
				log.Info("job runner stopped")
			} else {
				log.Warn("job runner stopped with handlers still running", "grace", r.opts.ShutdownGrace, "running", r.Running())
			}
			return nil
		case <-ticker.C:
		case <-r.wake:
		}
	}
}

// waitHandlers waits for the handlers to return, at most ShutdownGrace
// when set; it reports whether they all did.
func (r *Runner) waitHandlers(wg *sync.WaitGroup) bool {
	if r.opts.ShutdownGrace <= 0 {
		wg.Wait()
		return true
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(r.opts.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// claimReady claims jobs until none is ready, starting each.
func (r *Runner) claimReady(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) {
	for ctx.Err() == nil {
		if max := r.opts.MaxRunning; max > 0 && r.Running() >= max {
			return // a finishing job's Notify brings us back
		}
		j, err := r.st.ClaimJob(ctx, r.opts.Owner, time.Now(), r.opts.Lease)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Error("claim job", "err", err)
			}
			return
		}
		// The handler's context keeps ctx's values but not its
		// cancellation: shutdown cancels it with a cause of its own.
		hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		r.mu.Lock()
		r.running[j.ID] = cancel
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runJob(hctx, cancel, j, log.With("job", j.ID, "kind", j.Kind, "queue", j.Queue, "attempt", j.Attempt))
			r.mu.Lock()
			delete(r.running, j.ID)
			r.mu.Unlock()
			cancel(nil)
			r.Notify() // a slot is free
		}()
	}
}

// runJob runs one claimed job to its end and records the outcome.
func (r *Runner) runJob(ctx context.Context, cancel context.CancelCauseFunc, j *core.Job, log *slog.Logger) {
	r.mu.Lock()
	h := r.handlers[j.Kind]
	r.mu.Unlock()
	// Store calls outlive the handler's context, which may be canceled.
	bg := context.WithoutCancel(ctx)
	if h == nil {
		log.Error("no handler for job kind")
		r.finish(bg, j, core.JobFailed, fmt.Sprintf("no handler registered for job kind %q", j.Kind), log)
		return
	}
	log.Info("job started")
	start := time.Now()

	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.watch(bg, cancel, j, done, log)
	}()
	err := call(ctx, h, j, log)
	close(done)
	<-watched

	cause := context.Cause(ctx)
	elapsed := time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(cause, ErrLeaseLost):
		log.Warn("job abandoned: lease lost", "elapsed", elapsed, "err", err)
	case err == nil:
		log.Info("job succeeded", "elapsed", elapsed)
		r.finish(bg, j, core.JobSucceeded, "", log)
	case errors.Is(cause, ErrShutdown):
		log.Info("job interrupted by shutdown; releasing", "elapsed", elapsed, "err", err)
		if err := retry(bg, func(ctx context.Context) error { return r.st.ReleaseJob(ctx, j.ID, r.opts.Owner) }); err != nil {
			// The lease will expire and the job be claimed again.
			log.Error("release job", "err", err)
		}
	case errors.Is(cause, ErrCanceled):
		log.Info("job canceled", "elapsed", elapsed)
		r.finish(bg, j, core.JobCanceled, "canceled by request", log)
	default:
		log.Warn("job failed", "elapsed", elapsed, "err", err)
		r.finish(bg, j, core.JobFailed, err.Error(), log)
	}
}

// finish records a terminal state.
func (r *Runner) finish(ctx context.Context, j *core.Job, state, errText string, log *slog.Logger) {
	err := retry(ctx, func(ctx context.Context) error { return r.st.FinishJob(ctx, j.ID, r.opts.Owner, state, errText) })
	if err != nil {
		// The lease will expire and the job be claimed again.
		log.Error("record job outcome", "state", state, "err", err)
	}
}

// retry calls fn up to three times, 10 seconds each, while it fails with
// anything but store.ErrNotFound (which no retry can fix).
func retry(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Duration(i) * 250 * time.Millisecond)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = fn(cctx)
		cancel()
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return err
}

// watch renews the job's lease every Lease/3 and reads its cancel flag
// every CancelCheck until done is closed, canceling the handler's context
// when a cancel is requested or the lease is lost.
func (r *Runner) watch(ctx context.Context, cancel context.CancelCauseFunc, j *core.Job, done <-chan struct{}, log *slog.Logger) {
	tick := min(r.opts.CancelCheck, r.opts.Lease/3)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	renewed := time.Now()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
		}
		if time.Since(renewed) >= r.opts.Lease/3 {
			now := time.Now()
			err := r.st.ExtendLease(ctx, j.ID, r.opts.Owner, now.Add(r.opts.Lease))
			switch {
			case errors.Is(err, store.ErrNotFound):
				cancel(ErrLeaseLost)
				return
			case err != nil:
				log.Error("extend lease", "err", err) // retried next tick
			default:
				renewed = now
			}
		}
		cur, err := r.st.GetJob(ctx, j.ID)
		switch {
		case err != nil:
			log.Error("read cancel flag", "err", err)
		case cur.CancelRequested:
			cancel(ErrCanceled)
		case cur.State != core.JobRunning || cur.LeaseOwner != r.opts.Owner:
			cancel(ErrLeaseLost)
			return
		}
	}
}

// call runs h, turning a panic into an error (its stack goes to the log).
func call(ctx context.Context, h Handler, j *core.Job, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("job handler panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error: handler panicked: %v", p)
		}
	}()
	return h(ctx, j)
}
