package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/model"
)

// TestRunPretrain runs `gantry pretrain` on a small corpus and loads what
// it wrote; bad flags are errors that name them.
func TestRunPretrain(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(corpus, []byte(strings.Repeat("Call me Ishmael. Some years ago, never mind how long. ", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "m")
	err := runPretrain(context.Background(), []string{"--preset", "tiny", "--corpus", corpus, "--out", out,
		"--steps", "3", "--seq", "16", "--batch", "2", "--seed", "5", "--dtype", "f32"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config.VocabSize != 259 || m.DTypes["F32"] == 0 {
		t.Errorf("vocabulary %d, dtypes %v", m.Config.VocabSize, m.DTypes)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "--corpus and --out are required"},
		{[]string{"--corpus", corpus, "--out", filepath.Join(dir, "x"), "--dtype", "i8"}, `--dtype "i8"`},
		{[]string{"--corpus", filepath.Join(dir, "missing"), "--out", filepath.Join(dir, "y")}, "read corpus"},
		{[]string{"--corpus", corpus, "--out", out}, "not empty"},
	} {
		if err := runPretrain(context.Background(), c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}
