package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

const lease = time.Minute

func enqueue(t *testing.T, st store.Store, j *core.Job) *core.Job {
	t.Helper()
	must(t, st.EnqueueJob(ctx(t), j), "enqueue "+j.ID)
	return j
}

// claim claims a job at now, failing the test on any error but ErrNotFound,
// for which it returns nil.
func claim(t *testing.T, st store.Store, owner string, now time.Time) *core.Job {
	t.Helper()
	j, err := st.ClaimJob(ctx(t), owner, now, lease)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	must(t, err, "claim")
	return j
}

func testJobLifecycle(t *testing.T, st store.Store) {
	j := enqueue(t, st, &core.Job{Kind: "fine-tune", Queue: "q1", ResourceID: "m1", WorkRequestID: "wr1", TenancyID: "ten1",
		Payload: []byte(`{"x":1}`), State: "bogus", Attempt: 7})
	if j.ID == "" || j.State != core.JobQueued || j.Attempt != 0 || j.TimeCreated.IsZero() {
		t.Fatalf("enqueue did not normalise the job: %+v", j)
	}
	got, err := st.GetJob(ctx(t), j.ID)
	must(t, err, "get")
	if got.Kind != "fine-tune" || got.Queue != "q1" || string(got.Payload) != `{"x":1}` || got.State != core.JobQueued ||
		got.WorkRequestID != "wr1" || got.TenancyID != "ten1" || !got.TimeCreated.Equal(j.TimeCreated) {
		t.Fatalf("get: %+v", got)
	}
	_, err = st.GetJob(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "get unknown")
	wantErr(t, st.EnqueueJob(ctx(t), &core.Job{ID: j.ID, Kind: "x"}), store.ErrConflict, "duplicate ID")
	if err := st.EnqueueJob(ctx(t), &core.Job{}); err == nil {
		t.Fatal("job without kind accepted")
	}
	j2 := enqueue(t, st, &core.Job{Kind: "fine-tune", Queue: "q2", ResourceID: "m1"})
	byRes, err := st.GetJobByResource(ctx(t), "m1")
	must(t, err, "by resource")
	if byRes.ID != j2.ID {
		t.Fatalf("newest job of m1: got %s, want %s", byRes.ID, j2.ID)
	}
	_, err = st.GetJobByResource(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "by unknown resource")

	now := time.Now()
	c := claim(t, st, "w1", now)
	if c == nil || c.ID != j.ID || c.State != core.JobRunning || c.Attempt != 1 || c.LeaseOwner != "w1" ||
		!c.LeaseExpires.Equal(now.Add(lease).UTC().Round(0)) {
		t.Fatalf("claim: %+v", c)
	}
	wantErr(t, st.ExtendLease(ctx(t), j.ID, "w2", now.Add(2*lease)), store.ErrNotFound, "extend by another owner")
	must(t, st.ExtendLease(ctx(t), j.ID, "w1", now.Add(2*lease)), "extend")
	got, _ = st.GetJob(ctx(t), j.ID)
	if !got.LeaseExpires.Equal(now.Add(2 * lease).UTC().Round(0)) {
		t.Fatalf("extended lease: %v", got.LeaseExpires)
	}
	wantErr(t, st.FinishJob(ctx(t), j.ID, "w2", core.JobSucceeded, ""), store.ErrNotFound, "finish by another owner")
	if err := st.FinishJob(ctx(t), j.ID, "w1", core.JobRunning, ""); err == nil {
		t.Fatal("finish with a non-terminal state accepted")
	}
	must(t, st.FinishJob(ctx(t), j.ID, "w1", core.JobFailed, "exploded"), "finish")
	got, _ = st.GetJob(ctx(t), j.ID)
	if got.State != core.JobFailed || got.Error != "exploded" {
		t.Fatalf("finished: %+v", got)
	}
	wantErr(t, st.FinishJob(ctx(t), j.ID, "w1", core.JobSucceeded, ""), store.ErrNotFound, "finish twice")
	wantErr(t, st.ExtendLease(ctx(t), j.ID, "w1", now.Add(3*lease)), store.ErrNotFound, "extend a finished job")

	// Counting.
	for _, c := range []struct {
		queue  string
		states []string
		want   int
	}{
		{"", nil, 2}, {"q1", nil, 1}, {"q2", []string{core.JobQueued}, 1}, {"", []string{core.JobFailed, core.JobQueued}, 2},
		{"", []string{core.JobRunning}, 0}, {"q9", nil, 0},
	} {
		n, err := st.CountJobs(ctx(t), c.queue, c.states...)
		must(t, err, "count")
		if n != c.want {
			t.Fatalf("count %q %v: got %d, want %d", c.queue, c.states, n, c.want)
		}
	}
	if _, err := st.ClaimJob(ctx(t), "", now, lease); err == nil {
		t.Fatal("claim without owner accepted")
	}
	if err := st.SetQueueConcurrency(ctx(t), "q", -1); err == nil {
		t.Fatal("negative concurrency accepted")
	}
}

func testJobFIFOAndConcurrency(t *testing.T, st store.Store) {
	now := time.Now()
	var a, b []*core.Job
	for i := range 4 {
		a = append(a, enqueue(t, st, &core.Job{ID: fmt.Sprintf("a%d", i), Kind: "k", Queue: "qa"}))
		b = append(b, enqueue(t, st, &core.Job{ID: fmt.Sprintf("b%d", i), Kind: "k", Queue: "qb"}))
	}
	must(t, st.SetQueueConcurrency(ctx(t), "qa", 2), "set qa")
	// qb has no concurrency set: one at a time.
	var order []string
	for {
		c := claim(t, st, "w", now)
		if c == nil {
			break
		}
		order = append(order, c.ID)
	}
	if fmt.Sprint(order) != "[a0 b0 a1]" {
		t.Fatalf("claims with qa=2, qb unset: %v", order)
	}
	must(t, st.FinishJob(ctx(t), "a0", "w", core.JobSucceeded, ""), "finish a0")
	if c := claim(t, st, "w", now); c == nil || c.ID != "a2" {
		t.Fatalf("after a0 finished: %+v", c)
	}
	// Raising the concurrency applies to the next claim.
	must(t, st.SetQueueConcurrency(ctx(t), "qb", 3), "set qb")
	got := []string{}
	for c := claim(t, st, "w", now); c != nil; c = claim(t, st, "w", now) {
		got = append(got, c.ID)
	}
	if fmt.Sprint(got) != "[b1 b2]" {
		t.Fatalf("after qb=3: %v", got)
	}
	// Lowering it: no new claims until running drops below.
	must(t, st.SetQueueConcurrency(ctx(t), "qb", 1), "lower qb")
	must(t, st.FinishJob(ctx(t), "b0", "w", core.JobSucceeded, ""), "finish b0")
	if c := claim(t, st, "w", now); c != nil {
		t.Fatalf("claimed %s over the lowered limit", c.ID)
	}
	// A paused queue (0) runs nothing.
	must(t, st.SetQueueConcurrency(ctx(t), "qa", 0), "pause qa")
	must(t, st.FinishJob(ctx(t), "a1", "w", core.JobSucceeded, ""), "finish a1")
	must(t, st.FinishJob(ctx(t), "a2", "w", core.JobSucceeded, ""), "finish a2")
	if c := claim(t, st, "w", now); c != nil {
		t.Fatalf("claimed %s from a paused queue", c.ID)
	}
	n, err := st.CountJobs(ctx(t), "qb", core.JobRunning)
	must(t, err, "count")
	if n != 2 {
		t.Fatalf("running in qb: %d", n)
	}
	_ = a
	_ = b

	// The default queue "" has no limit until one is set.
	for i := range 5 {
		enqueue(t, st, &core.Job{ID: fmt.Sprintf("d%d", i), Kind: "k"})
	}
	got = nil
	for c := claim(t, st, "w", now); c != nil; c = claim(t, st, "w", now) {
		got = append(got, c.ID)
	}
	if fmt.Sprint(got) != "[d0 d1 d2 d3 d4]" {
		t.Fatalf("default queue: %v", got)
	}
}

func testJobLeaseExpiry(t *testing.T, st store.Store) {
	now := time.Now()
	j := enqueue(t, st, &core.Job{Kind: "k", Queue: "q"})
	enqueue(t, st, &core.Job{ID: "second", Kind: "k", Queue: "q"})
	c := claim(t, st, "dead", now)
	if c == nil || c.ID != j.ID {
		t.Fatalf("first claim: %+v", c)
	}
	// Before the lease runs out nobody else gets it, nor the next job of the queue.
	if c := claim(t, st, "w2", now.Add(lease-time.Second)); c != nil {
		t.Fatalf("claimed %s while the lease holds", c.ID)
	}
	// After it, the job is claimed again, attempt 2, before the next job.
	later := now.Add(lease + time.Second)
	c = claim(t, st, "w2", later)
	if c == nil || c.ID != j.ID || c.Attempt != 2 || c.LeaseOwner != "w2" {
		t.Fatalf("reclaim: %+v", c)
	}
	wantErr(t, st.ExtendLease(ctx(t), j.ID, "dead", later.Add(lease)), store.ErrNotFound, "dead owner extends")
	wantErr(t, st.FinishJob(ctx(t), j.ID, "dead", core.JobSucceeded, ""), store.ErrNotFound, "dead owner finishes")
	must(t, st.FinishJob(ctx(t), j.ID, "w2", core.JobSucceeded, ""), "new owner finishes")
	if c := claim(t, st, "w2", later); c == nil || c.ID != "second" {
		t.Fatalf("next job: %+v", c)
	}
}

func testJobCancel(t *testing.T, st store.Store) {
	now := time.Now()
	q := enqueue(t, st, &core.Job{ID: "queued", Kind: "k", Queue: "q1"})
	r := enqueue(t, st, &core.Job{ID: "running", Kind: "k", Queue: "q2"})
	if c := claim(t, st, "w", now); c == nil || c.ID != "queued" {
		t.Fatalf("claim: %+v", c)
	}
	must(t, st.FinishJob(ctx(t), "queued", "w", core.JobSucceeded, ""), "finish")
	q = enqueue(t, st, &core.Job{ID: "queued2", Kind: "k", Queue: "q1"})
	if c := claim(t, st, "w", now); c == nil || c.ID != "running" {
		t.Fatalf("claim: %+v", c)
	}
	got, err := st.RequestCancel(ctx(t), q.ID)
	must(t, err, "cancel queued")
	if got.State != core.JobCanceled || !got.CancelRequested {
		t.Fatalf("canceled queued job: %+v", got)
	}
	if c := claim(t, st, "w", now); c != nil {
		t.Fatalf("claimed canceled job %s", c.ID)
	}
	got, err = st.RequestCancel(ctx(t), r.ID)
	must(t, err, "cancel running")
	if got.State != core.JobRunning || !got.CancelRequested {
		t.Fatalf("cancel of running job: %+v", got)
	}
	got, _ = st.GetJob(ctx(t), r.ID)
	if !got.CancelRequested {
		t.Fatal("flag not stored")
	}
	must(t, st.FinishJob(ctx(t), r.ID, "w", core.JobCanceled, "canceled"), "finish canceled")
	got, err = st.RequestCancel(ctx(t), "queued")
	must(t, err, "cancel finished")
	if got.State != core.JobSucceeded {
		t.Fatalf("cancel changed a finished job: %+v", got)
	}
	_, err = st.RequestCancel(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "cancel unknown")

	// A dead worker's job with a cancel request is canceled, not rerun.
	d := enqueue(t, st, &core.Job{ID: "dead", Kind: "k", Queue: "q3"})
	if c := claim(t, st, "dead-worker", now); c == nil || c.ID != d.ID {
		t.Fatalf("claim: %+v", c)
	}
	_, err = st.RequestCancel(ctx(t), d.ID)
	must(t, err, "cancel")
	if c := claim(t, st, "w", now.Add(2*lease)); c != nil {
		t.Fatalf("reclaimed a canceled job: %+v", c)
	}
	got, _ = st.GetJob(ctx(t), d.ID)
	if got.State != core.JobCanceled {
		t.Fatalf("dead worker's canceled job: %+v", got)
	}
}

func testJobRelease(t *testing.T, st store.Store) {
	now := time.Now()
	j := enqueue(t, st, &core.Job{Kind: "k", Queue: "q"})
	enqueue(t, st, &core.Job{ID: "next", Kind: "k", Queue: "q"})
	c := claim(t, st, "w1", now)
	wantErr(t, st.ReleaseJob(ctx(t), j.ID, "w2"), store.ErrNotFound, "release by another owner")
	must(t, st.ReleaseJob(ctx(t), c.ID, "w1"), "release")
	got, _ := st.GetJob(ctx(t), j.ID)
	if got.State != core.JobQueued || got.LeaseOwner != "" {
		t.Fatalf("released: %+v", got)
	}
	wantErr(t, st.ReleaseJob(ctx(t), j.ID, "w1"), store.ErrNotFound, "release twice")
	// The released job is first again, with the same attempt.
	c = claim(t, st, "w2", now)
	if c == nil || c.ID != j.ID || c.Attempt != 1 {
		t.Fatalf("claim after release: %+v", c)
	}
}

func testJobConcurrentClaims(t *testing.T, st store.Store) {
	const (
		queues   = 3
		perQueue = 8
		limit    = 2
		workers  = 6
	)
	for q := range queues {
		must(t, st.SetQueueConcurrency(ctx(t), fmt.Sprintf("q%d", q), limit), "set concurrency")
	}
	must(t, st.InTx(ctx(t), func(tx store.Tx) error {
		for i := range perQueue {
			for q := range queues {
				if err := tx.EnqueueJob(ctx(t), &core.Job{ID: fmt.Sprintf("q%d-%02d", q, i), Kind: "k", Queue: fmt.Sprintf("q%d", q)}); err != nil {
					return err
				}
			}
		}
		return nil
	}), "enqueue")

	var (
		mu      sync.Mutex
		running = map[string]int{}
		claimed = map[string]string{}
		order   = map[string][]string{}
		failure error
		wg      sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if failure == nil {
			failure = err
		}
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			idle := 0
			for idle < 50 {
				j, err := st.ClaimJob(ctx(t), owner, time.Now(), lease)
				if errors.Is(err, store.ErrNotFound) {
					idle++
					time.Sleep(2 * time.Millisecond)
					continue
				}
				if err != nil {
					fail(err)
					return
				}
				idle = 0
				mu.Lock()
				if prev, ok := claimed[j.ID]; ok {
					failure = fmt.Errorf("job %s claimed by %s and %s", j.ID, prev, owner)
				}
				claimed[j.ID] = owner
				order[j.Queue] = append(order[j.Queue], j.ID)
				running[j.Queue]++
				if running[j.Queue] > limit {
					failure = fmt.Errorf("queue %s runs %d jobs, limit %d", j.Queue, running[j.Queue], limit)
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				running[j.Queue]--
				mu.Unlock()
				if err := st.FinishJob(ctx(t), j.ID, owner, core.JobSucceeded, ""); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	if len(claimed) != queues*perQueue {
		t.Fatalf("claimed %d jobs, want %d", len(claimed), queues*perQueue)
	}
	n, err := st.CountJobs(ctx(t), "", core.JobSucceeded)
	must(t, err, "count")
	if n != queues*perQueue {
		t.Fatalf("%d succeeded", n)
	}
	// Claims within a queue follow creation order.
	for q, ids := range order {
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] {
				t.Fatalf("queue %s claimed out of order: %v", q, ids)
			}
		}
	}
}

func testJobExpireLeases(t *testing.T, st store.Store) {
	now := time.Now()
	enqueue(t, st, &core.Job{ID: "d1", Kind: "k", Queue: "q1"})
	enqueue(t, st, &core.Job{ID: "d2", Kind: "k", Queue: "q2"})
	enqueue(t, st, &core.Job{ID: "alive", Kind: "k", Queue: "q3"})
	for _, owner := range []string{"dead", "dead", "live"} {
		if c := claim(t, st, owner, now); c == nil {
			t.Fatalf("%s claims nothing", owner)
		}
	}
	n, err := st.ExpireJobLeases(ctx(t), "dead")
	must(t, err, "expire")
	if n != 2 {
		t.Fatalf("expired %d jobs, want 2", n)
	}
	// The dead owner's jobs are claimed at once, as new attempts; the
	// live owner's job is not.
	var got []string
	for c := claim(t, st, "w2", now); c != nil; c = claim(t, st, "w2", now) {
		if c.Attempt != 2 {
			t.Errorf("%s reclaimed as attempt %d, want 2", c.ID, c.Attempt)
		}
		got = append(got, c.ID)
	}
	if !slices.Equal(got, []string{"d1", "d2"}) {
		t.Fatalf("reclaimed %v, want [d1 d2]", got)
	}
	wantErr(t, st.ExtendLease(ctx(t), "d1", "dead", now.Add(lease)), store.ErrNotFound, "dead owner extends")
	must(t, st.ExtendLease(ctx(t), "alive", "live", now.Add(lease)), "live owner extends")
	if n, err := st.ExpireJobLeases(ctx(t), "nobody"); err != nil || n != 0 {
		t.Fatalf("expire for an owner without jobs: %d, %v", n, err)
	}
	_, err = st.ExpireJobLeases(ctx(t), "")
	if err == nil {
		t.Fatal("expire for an empty owner accepted")
	}
}
