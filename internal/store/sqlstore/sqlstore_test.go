package sqlstore

import (
	"errors"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/store"
)

func TestRebind(t *testing.T) {
	cases := []struct {
		numbered bool
		in, want string
	}{
		{false, "SELECT a FROM t WHERE x = ? AND y = ?", "SELECT a FROM t WHERE x = ? AND y = ?"},
		{true, "SELECT a FROM t WHERE x = ? AND y = ?", "SELECT a FROM t WHERE x = $1 AND y = $2"},
		{true, "SELECT 1", "SELECT 1"},
		{true, "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
	}
	for _, c := range cases {
		q := querier{d: &Dialect{Numbered: c.numbered}}
		if got := q.rebind(c.in); got != c.want {
			t.Errorf("rebind(%q, numbered=%v) = %q, want %q", c.in, c.numbered, got, c.want)
		}
	}
}

func TestLikeMember(t *testing.T) {
	for in, want := range map[string]string{
		"CHAT":  "%,CHAT,%",
		"a_b":   `%,a\_b,%`,
		"50%":   `%,50\%,%`,
		`a\b`:   `%,a\\b,%`,
		"":      "%,,%",
		"x,y_z": `%,x,y\_z,%`,
	} {
		if got := likeMember(in); got != want {
			t.Errorf("likeMember(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPageToken(t *testing.T) {
	tok := pageToken{Sort: "displayName", Desc: true, Name: "model ü", ID: "ocid1.x"}
	got, err := decodeToken(encodeToken(tok))
	if err != nil || got != tok {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "!!!", "e30", "bm90IGpzb24"} { // "", bad base64, {}, "not json"
		if _, err := decodeToken(bad); !errors.Is(err, store.ErrInvalidPage) {
			t.Errorf("decodeToken(%q): %v, want ErrInvalidPage", bad, err)
		}
	}
}

func TestPageLimit(t *testing.T) {
	for in, want := range map[int]int{-5: 100, 0: 100, 1: 1, 100: 100, 1000: 1000, 1001: 1000, 1 << 40: 1000} {
		if got := pageLimit(in); got != want {
			t.Errorf("pageLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestNanos(t *testing.T) {
	if nanos(time.Time{}) != 0 || !fromNanos(0).IsZero() {
		t.Fatal("zero time does not round-trip as 0")
	}
	tm := time.Date(2026, 11, 28, 18, 0, 0, 123456789, time.FixedZone("X", 3600))
	if got := fromNanos(nanos(tm)); !got.Equal(tm) || got.Location() != time.UTC {
		t.Fatalf("round trip: %v", got)
	}
}
