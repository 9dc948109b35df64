package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/migrations"
	"github.com/gantryml/gantry/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store {
	t.Helper()
	st, err := Open(t.Context(), filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, openTemp)
}

// TestReopen closes a database and opens the same file again: everything
// committed is there, and the migrations are not applied twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gantry.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m := &core.Model{ID: "m1", TenancyID: "t", CompartmentID: "c", DisplayName: "n", Version: "1", Type: core.ModelTypeCustom, LifecycleState: core.ModelCreating}
	if err := st.InsertModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	j := &core.Job{Kind: "fine-tune", ResourceID: "m1"}
	if err := st.EnqueueJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	got, err := st.GetModel(ctx, "m1")
	if err != nil || got.ETag != m.ETag {
		t.Fatalf("model after reopen: %+v, %v", got, err)
	}
	gj, err := st.GetJob(ctx, j.ID)
	if err != nil || gj.State != core.JobQueued {
		t.Fatalf("job after reopen: %+v, %v", gj, err)
	}
	all, err := migrations.List("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil || v != len(all) {
		t.Fatalf("schema version %d, %v; want %d", v, err, len(all))
	}
}

// TestMigrateDown undoes every migration and applies them again.
func TestMigrateDown(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gantry.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// One step down, then up again at open: an upgrade from version 1.
	if err := st.MigrateDown(ctx, 1); err != nil {
		t.Fatalf("down to 1: %v", err)
	}
	if v, _ := st.SchemaVersion(ctx); v != 1 {
		t.Fatalf("version after down to 1: %d", v)
	}
	st.Close()
	if st, err = Open(ctx, path); err != nil {
		t.Fatalf("upgrade from 1: %v", err)
	}
	if v, _ := st.SchemaVersion(ctx); v < 2 {
		t.Fatalf("version after upgrade: %d", v)
	}
	if err := st.MigrateDown(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	if v, _ := st.SchemaVersion(ctx); v != 0 {
		t.Fatalf("version after down: %d", v)
	}
	if _, err := st.GetModel(ctx, "x"); err == nil {
		t.Fatal("models table still there after down")
	}
	st.Close()
	st, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	defer st.Close()
	if err := st.InsertModel(ctx, &core.Model{ID: "m", Type: core.ModelTypeCustom}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, p := range []string{"", "a?b", filepath.Join(t.TempDir(), "missing-dir", "x", "gantry.db")} {
		if st, err := Open(t.Context(), p); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

// TestTwoProcesses opens the same file twice, as two Gantry processes
// would, and claims jobs from both at once: every job is claimed exactly
// once and no write fails with SQLITE_BUSY.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gantry.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 40
	for i := range n {
		if err := a.EnqueueJob(ctx, &core.Job{ID: fmt.Sprintf("j%02d", i), Kind: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w, st := range []store.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				j, err := st.ClaimJob(ctx, owner, time.Now(), time.Minute)
				if errors.Is(err, store.ErrNotFound) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, ok := seen[j.ID]; ok {
					errs <- fmt.Errorf("%s claimed by %s and %s", j.ID, prev, owner)
				}
				seen[j.ID] = owner
				mu.Unlock()
				if err := st.FinishJob(ctx, j.ID, owner, core.JobSucceeded, ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d of %d jobs", len(seen), n)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(tb testing.TB) store.Store {
		st, err := Open(context.Background(), filepath.Join(tb.TempDir(), "gantry.db"))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		return st
	})
}

// TestBootstrapMigrationBackfill: a database bootstrapped before the
// bootstrap table existed (schema version 2, one tenancy) is claimed by
// that tenancy when migrated, so no second tenancy is ever bootstrapped.
func TestBootstrapMigrationBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gantry.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MigrateDown(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenancy(ctx, &core.Tenancy{ID: "ocid1.tenancy.oc1..old", Name: "old", Namespace: "old"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	claimed, err := st.ClaimBootstrap(ctx, "ocid1.tenancy.oc1..new", time.Now())
	if err != nil || claimed {
		t.Fatalf("claim on a migrated, bootstrapped database: claimed %v, %v; want false, nil", claimed, err)
	}
}

// TestConcurrentOpen: servers opening one new database file at the same
// moment all succeed (switching the file to WAL does not wait for the
// busy timeout, so Open retries it).
func TestConcurrentOpen(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "gantry.db")
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				st, err := Open(context.Background(), path)
				if err == nil {
					st.Close()
				}
				errs[i] = err
			}()
		}
		close(gate)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, err)
			}
		}
	}
}
