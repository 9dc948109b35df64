// Package migrations holds Gantry's database schema as numbered SQL files
// embedded in the binary, one directory per dialect ("sqlite",
// "postgres") sharing one numbering, each step with an up and a down
// file. The sqlstore package applies them in order at open and records
// each in a schema_migrations table.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Migration is one numbered schema step.
type Migration struct {
	Version int    // 1, 2, ...: the file name's number
	Name    string // the file name between number and ".up.sql", e.g. "init"
	Up      string // SQL applying the step
	Down    string // SQL undoing it
}

// List returns a dialect's migrations in version order. It fails when a
// step lacks its up or down file, or when numbers are missing or repeated,
// so a broken set is caught by any test that opens a store.
func List(dialect string) ([]Migration, error) {
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations for dialect %q: %w", dialect, err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		name := e.Name()
		var direction string
		switch {
		case strings.HasSuffix(name, ".up.sql"):
			direction = "up"
		case strings.HasSuffix(name, ".down.sql"):
			direction = "down"
		default:
			return nil, fmt.Errorf("migration %s/%s: name must end in .up.sql or .down.sql", dialect, name)
		}
		stem := strings.TrimSuffix(name, "."+direction+".sql")
		num, label, ok := strings.Cut(stem, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_name.%s.sql", dialect, name, direction)
		}
		body, err := files.ReadFile(dialect + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s/%s: %w", dialect, name, err)
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v, Name: label}
			byVersion[v] = m
		} else if m.Name != label {
			return nil, fmt.Errorf("migration %s/%s: version %d is also named %q", dialect, name, v, m.Name)
		}
		if direction == "up" {
			m.Up = string(body)
		} else {
			m.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations for %s: version %d missing", dialect, i+1)
		}
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %s/%04d_%s: needs both an up and a down file", dialect, m.Version, m.Name)
		}
	}
	return out, nil
}
