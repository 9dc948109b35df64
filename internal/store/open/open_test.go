package open

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store/postgres"
	"github.com/gantryml/gantry/internal/store/postgres/pgtest"
	"github.com/gantryml/gantry/internal/store/sqlite"
)

func TestOpenSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := Open(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.(*sqlite.Store); !ok {
		t.Fatalf("got %T, want *sqlite.Store", st)
	}
	if _, err := os.Stat(filepath.Join(dir, SQLiteFile)); err != nil {
		t.Fatalf("database file: %v", err)
	}
	if err := st.CreateTenancy(t.Context(), &core.Tenancy{ID: "t", Namespace: "n"}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenPostgres(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.(*postgres.Store); !ok {
		t.Fatalf("got %T, want *postgres.Store", st)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, c := range []struct{ dir, url string }{
		{t.TempDir(), "mysql://x"},
		{"", ""},
	} {
		if st, err := Open(t.Context(), c.dir, c.url); err == nil {
			st.Close()
			t.Errorf("Open(%q, %q) succeeded", c.dir, c.url)
		}
	}
}
