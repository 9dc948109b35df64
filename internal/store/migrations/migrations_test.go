package migrations

import (
	"strings"
	"testing"
)

// TestDialectsShareNumbering: every dialect has the same steps, in order,
// each with an up and a down.
func TestDialectsShareNumbering(t *testing.T) {
	sq, err := List("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := List("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(sq) == 0 || len(sq) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(sq), len(pg))
	}
	for i := range sq {
		if sq[i].Version != i+1 || pg[i].Version != i+1 || sq[i].Name != pg[i].Name {
			t.Errorf("step %d: sqlite %04d_%s, postgres %04d_%s", i+1, sq[i].Version, sq[i].Name, pg[i].Version, pg[i].Name)
		}
		for _, m := range []Migration{sq[i], pg[i]} {
			if !strings.Contains(m.Up, "CREATE") && !strings.Contains(m.Up, "ALTER") {
				t.Errorf("%04d_%s: up does not look like DDL", m.Version, m.Name)
			}
			if strings.TrimSpace(m.Down) == "" {
				t.Errorf("%04d_%s: empty down", m.Version, m.Name)
			}
		}
	}
}

func TestUnknownDialect(t *testing.T) {
	if _, err := List("mysql"); err == nil {
		t.Fatal("List(mysql) succeeded")
	}
}
