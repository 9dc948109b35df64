package jobs

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store/postgres"
	"github.com/gantryml/gantry/internal/store/postgres/pgtest"
)

// TestPostgres runs jobs on PostgreSQL with two runners sharing the queue,
// one of which takes over a dead runner's job.
func TestPostgres(t *testing.T) {
	st, err := postgres.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.SetQueueConcurrency(ctx, "q", 2); err != nil {
		t.Fatal(err)
	}
	dead := enqueue(t, st, &core.Job{Kind: "k", Queue: "q"})
	if _, err := st.ClaimJob(ctx, "dead", time.Now(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 6 {
		ids = append(ids, enqueue(t, st, &core.Job{Kind: "k", Queue: "q"}).ID)
	}
	var calls, running, maxRunning atomic.Int64
	h := func(ctx context.Context, j *core.Job) error {
		calls.Add(1)
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		running.Add(-1)
		return nil
	}
	for _, owner := range []string{"a", "b"} {
		r := New(st, fastOptions(owner))
		r.Register("k", h)
		start(t, r)
	}
	got := waitState(t, st, dead.ID, core.JobSucceeded)
	if got.Attempt != 2 {
		t.Fatalf("dead runner's job: attempt %d", got.Attempt)
	}
	for _, id := range ids {
		waitState(t, st, id, core.JobSucceeded)
	}
	if calls.Load() != 7 || maxRunning.Load() > 2 {
		t.Fatalf("%d handler calls (want 7), at most %d at once (limit 2)", calls.Load(), maxRunning.Load())
	}
}
