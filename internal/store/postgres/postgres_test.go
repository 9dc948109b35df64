package postgres

import (
	"context"
	"testing"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/postgres/pgtest"
	"github.com/gantryml/gantry/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store {
	t.Helper()
	st, err := Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, openTemp)
}

// TestReopenAndMigrateDown reconnects to the same schema (all there, no
// migration applied twice), then undoes and reapplies the migrations.
func TestReopenAndMigrateDown(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	m := &core.Model{ID: "m1", TenancyID: "t", DisplayName: "n", Version: "1", Type: core.ModelTypeCustom}
	if err := st.InsertModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = Open(ctx, url)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	if got, err := st.GetModel(ctx, "m1"); err != nil || got.ETag != m.ETag {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if err := st.MigrateDown(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	if v, _ := st.SchemaVersion(ctx); v != 0 {
		t.Fatalf("version after down: %d", v)
	}
	st2, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	defer st2.Close()
	if _, err := st2.GetModel(ctx, "m1"); err == nil {
		t.Fatal("row survived down and up")
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"::not a url", "postgres://nobody@127.0.0.1:1/x?connect_timeout=1"} {
		if st, err := Open(t.Context(), u); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(tb testing.TB) store.Store {
		st, err := Open(context.Background(), pgtest.URL(tb))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		return st
	})
}
