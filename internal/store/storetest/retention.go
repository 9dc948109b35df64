package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// testClaimBootstrap: the first claim wins, later ones see it taken; a
// claim in a rolled-back transaction is undone.
func testClaimBootstrap(t *testing.T, st store.Store) {
	now := time.Now().UTC()
	boom := errors.New("boom")
	err := st.InTx(ctx(t), func(tx store.Tx) error {
		ok, err := tx.ClaimBootstrap(ctx(t), "ocid1.tenancy.oc1..rolledback", now)
		if err != nil {
			return err
		}
		if !ok {
			t.Error("first claim, in a transaction: not claimed")
		}
		return boom
	})
	wantErr(t, err, boom, "rolled-back claim")
	ok, err := st.ClaimBootstrap(ctx(t), "ocid1.tenancy.oc1..a", now)
	must(t, err, "claim")
	if !ok {
		t.Fatal("claim after a rolled-back one: not claimed")
	}
	ok, err = st.ClaimBootstrap(ctx(t), "ocid1.tenancy.oc1..b", now)
	must(t, err, "second claim")
	if ok {
		t.Fatal("second claim: claimed again")
	}
	_, err = st.ClaimBootstrap(ctx(t), "", now)
	if err == nil {
		t.Fatal("claim without a tenancy ID: no error")
	}
}

// testPurgeRetryTokens: tokens 24 hours old or older go, newer ones stay.
func testPurgeRetryTokens(t *testing.T, st store.Store) {
	now := time.Now().UTC()
	for _, tok := range []*core.RetryToken{
		{TenancyID: "ten1", Token: "old", TimeCreated: now.Add(-25 * time.Hour)},
		{TenancyID: "ten2", Token: "old", TimeCreated: now.Add(-24 * time.Hour)},
		{TenancyID: "ten1", Token: "fresh", TimeCreated: now.Add(-23 * time.Hour)},
	} {
		must(t, st.PutRetryToken(ctx(t), tok), "put "+tok.Token)
	}
	n, err := st.PurgeRetryTokens(ctx(t), now)
	must(t, err, "purge")
	if n != 2 {
		t.Fatalf("purged %d tokens, want 2", n)
	}
	_, err = st.GetRetryToken(ctx(t), "ten1", "fresh", now)
	must(t, err, "fresh token after purge")
	// The old ones are gone, not just hidden: looking 2 days back finds nothing.
	_, err = st.GetRetryToken(ctx(t), "ten1", "old", now.Add(-2*24*time.Hour+time.Hour))
	wantErr(t, err, store.ErrNotFound, "purged token")
	n, err = st.PurgeRetryTokens(ctx(t), now)
	must(t, err, "purge again")
	if n != 0 {
		t.Fatalf("second purge removed %d tokens, want 0", n)
	}
}

// testPurgeJobs: jobs that ended before the cutoff go; queued and running
// jobs, jobs that ended after it, and work requests with their logs and
// errors stay.
func testPurgeJobs(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.SetQueueConcurrency(c, "q", 10), "set concurrency")
	must(t, st.InsertWorkRequest(c, &core.WorkRequest{ID: "wr1", TenancyID: "ten1"}), "insert work request")
	must(t, st.AppendWorkRequestLog(c, "wr1", core.WorkRequestLog{Message: "step 10: loss 1.5", Timestamp: time.Now()}), "append log")
	must(t, st.AppendWorkRequestError(c, "wr1", core.WorkRequestError{Code: "X", Message: "boom", Timestamp: time.Now()}), "append error")
	beforeAll := time.Now().Add(-time.Second)
	for _, id := range []string{"ok", "bad", "stopped", "waiting", "busy"} {
		enqueue(t, st, &core.Job{ID: id, Kind: "k", Queue: "q", WorkRequestID: "wr1"})
	}
	now := time.Now()
	for _, end := range []struct{ id, state string }{{"ok", core.JobSucceeded}, {"bad", core.JobFailed}} {
		j := claim(t, st, "w", now)
		if j == nil || j.ID != end.id {
			t.Fatalf("claimed %+v, want job %s", j, end.id)
		}
		must(t, st.FinishJob(c, j.ID, "w", end.state, ""), "finish "+j.ID)
	}
	_, err := st.RequestCancel(c, "stopped")
	must(t, err, "cancel queued job")
	if j := claim(t, st, "w", now); j == nil || j.ID != "waiting" {
		t.Fatalf("claimed %+v, want job waiting", j)
	} else {
		must(t, st.ReleaseJob(c, j.ID, "w"), "release")
	}
	// Released, "waiting" is the oldest queued job again: claim it and
	// leave "busy" queued.
	if j := claim(t, st, "w", now); j == nil || j.ID != "waiting" {
		t.Fatalf("claimed %+v, want job waiting", j)
	}
	n, err := st.PurgeJobs(c, beforeAll)
	must(t, err, "purge before every end")
	if n != 0 {
		t.Fatalf("purge with a cutoff before every end removed %d jobs", n)
	}
	n, err = st.PurgeJobs(c, time.Now().Add(time.Hour))
	must(t, err, "purge")
	if n != 3 {
		t.Fatalf("purged %d jobs, want 3 (succeeded, failed, canceled)", n)
	}
	for _, id := range []string{"ok", "bad", "stopped"} {
		_, err := st.GetJob(c, id)
		wantErr(t, err, store.ErrNotFound, "purged job "+id)
	}
	for id, state := range map[string]string{"waiting": core.JobRunning, "busy": core.JobQueued} {
		j, err := st.GetJob(c, id)
		must(t, err, "kept job "+id)
		if j.State != state {
			t.Fatalf("job %s: state %s, want %s", id, j.State, state)
		}
	}
	logs, err := st.ListWorkRequestLogs(c, "wr1", store.LogQuery{})
	must(t, err, "logs after purge")
	errs, err := st.ListWorkRequestErrors(c, "wr1", store.LogQuery{})
	must(t, err, "errors after purge")
	if len(logs.Items) != 1 || len(errs.Items) != 1 {
		t.Fatalf("after purging jobs: %d logs, %d errors, want 1 and 1", len(logs.Items), len(errs.Items))
	}
}
