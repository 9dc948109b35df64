package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/server/servertest"
	"github.com/gantryml/gantry/internal/store"
)

// TestRetention: a running API server purges, on its own, retry tokens
// older than 24 hours and jobs finished longer than JobRetention ago, and
// keeps fresh tokens and the work request logs.
func TestRetention(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Postgres: pg, RetentionInterval: 50 * time.Millisecond, JobRetention: time.Millisecond})
			st := s.Server.Store
			ctx := context.Background()
			now := time.Now().UTC()
			old := &core.RetryToken{TenancyID: s.TenancyID, Token: "old", TimeCreated: now.Add(-25 * time.Hour)}
			fresh := &core.RetryToken{TenancyID: s.TenancyID, Token: "fresh", TimeCreated: now}
			for _, tok := range []*core.RetryToken{old, fresh} {
				if err := st.PutRetryToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.InsertWorkRequest(ctx, &core.WorkRequest{ID: "wr-retention", TenancyID: s.TenancyID}); err != nil {
				t.Fatal(err)
			}
			if err := st.AppendWorkRequestLog(ctx, "wr-retention", core.WorkRequestLog{Message: "step 10: loss 2.0", Timestamp: now}); err != nil {
				t.Fatal(err)
			}
			j := &core.Job{ID: "retention-test", Kind: "retention-test", WorkRequestID: "wr-retention"}
			if err := st.EnqueueJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			if _, err := st.RequestCancel(ctx, j.ID); err != nil { // ends it (or the workers fail it: no handler)
				t.Fatal(err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				_, jerr := st.GetJob(ctx, j.ID)
				// Look the old token up as of when it was stored: only a
				// purge, not expiry, hides it then.
				_, terr := st.GetRetryToken(ctx, s.TenancyID, "old", old.TimeCreated.Add(time.Minute))
				if errors.Is(jerr, store.ErrNotFound) && errors.Is(terr, store.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 15s: finished job lookup %v, expired token lookup %v; want both purged", jerr, terr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := st.GetRetryToken(ctx, s.TenancyID, "fresh", time.Now()); err != nil {
				t.Errorf("fresh retry token: %v", err)
			}
			logs, err := st.ListWorkRequestLogs(ctx, "wr-retention", store.LogQuery{})
			if err != nil || len(logs.Items) != 1 {
				t.Errorf("work request logs after the sweep: %d, %v; want 1", len(logs.Items), err)
			}
		})
	}
}
