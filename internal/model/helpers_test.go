package model

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gantryml/gantry/internal/safetensors"
)

// newTestModel writes a model directory from a preset, with edits applied
// to its config, and loads it.
func newTestModel(t testing.TB, preset string, dtype safetensors.DType, edit func(map[string]any)) (*Model, string) {
	t.Helper()
	cfg, err := PresetConfig(preset)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	dir := t.TempDir()
	if err := Init(context.Background(), dir, InitOptions{Config: cfg, Seed: 7, DType: dtype, RandomNorms: true}); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, dir
}

func randomIDs(r *rand.Rand, n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = r.IntN(vocab)
	}
	return ids
}

var (
	torchOnce sync.Once
	torchErr  error
)

// requireTorch skips (or, with GANTRY_REQUIRE_REFERENCES=1, fails) when
// /usr/bin/python3 cannot import torch.
func requireTorch(t *testing.T) {
	t.Helper()
	torchOnce.Do(func() {
		torchErr = exec.Command("/usr/bin/python3", "-c", "import torch, numpy").Run()
	})
	if torchErr != nil {
		if os.Getenv("GANTRY_REQUIRE_REFERENCES") == "1" {
			t.Fatalf("PyTorch reference required but /usr/bin/python3 cannot import torch: %v", torchErr)
		}
		t.Skipf("PyTorch reference not available (/usr/bin/python3 cannot import torch: %v)", torchErr)
	}
}

// torchRequest is one forward pass for the PyTorch reference: ids [B][T]
// and an optional attention mask of the same shape.
type torchRequest struct {
	IDs  [][]int `json:"input_ids"`
	Mask [][]int `json:"attention_mask,omitempty"`
}

// torchForwardMany runs testdata/torchref.py once on the model directory
// for several requests and returns each one's logits [B, T, V] and mean
// next-token loss. extra are more arguments for the script.
func torchForwardMany(t *testing.T, dir string, reqs []torchRequest, vocab int, extra ...string) ([][]float32, []float64) {
	t.Helper()
	tmp := t.TempDir()
	in, out := filepath.Join(tmp, "in.json"), filepath.Join(tmp, "out.bin")
	b, _ := json.Marshal(map[string]any{"requests": reqs})
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{"testdata/torchref.py", "--model", dir, "--input", in, "--output", out}, extra...)...)
	res, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("torchref.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("torchref.py: %v", err)
	}
	var r struct {
		Losses []float64 `json:"losses"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.Losses) != len(reqs) {
		t.Fatalf("torchref.py output %q: %v", res, err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]float32
	off := 0
	for _, q := range reqs {
		n := len(q.IDs) * len(q.IDs[0]) * vocab
		if len(raw) < off+4*n {
			t.Fatalf("torchref.py wrote %d bytes, want at least %d", len(raw), off+4*n)
		}
		logits := make([]float32, n)
		for i := range logits {
			j := off + 4*i
			logits[i] = math.Float32frombits(uint32(raw[j]) | uint32(raw[j+1])<<8 | uint32(raw[j+2])<<16 | uint32(raw[j+3])<<24)
		}
		off += 4 * n
		all = append(all, logits)
	}
	if off != len(raw) {
		t.Fatalf("torchref.py wrote %d bytes, want %d", len(raw), off)
	}
	return all, r.Losses
}

// torchForward runs one request through the PyTorch reference.
func torchForward(t *testing.T, dir string, ids [][]int, mask [][]int, vocab int, extra ...string) ([]float32, float64) {
	t.Helper()
	l, loss := torchForwardMany(t, dir, []torchRequest{{IDs: ids, Mask: mask}}, vocab, extra...)
	return l[0], loss[0]
}

// compareLogits fails unless got agrees with want within rel relative to
// want's largest magnitude, overall and element by element (each element
// within rel of its own magnitude plus an absolute floor of rel/10 of the
// largest).
func compareLogits(t *testing.T, what string, got, want []float32, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	var maxAbs, maxDiff float64
	for i := range want {
		maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-want[i])))
	}
	if maxAbs == 0 {
		t.Fatalf("%s: reference logits are all zero", what)
	}
	if maxDiff/maxAbs > rel || math.IsNaN(maxDiff) {
		t.Errorf("%s: max |a-b| / max |b| = %.3g (max |b| %.3g), want <= %g", what, maxDiff/maxAbs, maxAbs, rel)
	}
	bad := 0
	for i := range want {
		d := math.Abs(float64(got[i] - want[i]))
		if d > rel*math.Abs(float64(want[i]))+rel/10*maxAbs {
			if bad < 3 {
				t.Errorf("%s: logit %d = %g, want %g", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d logits disagree", what, bad, len(want))
	}
	t.Logf("%s: max |a-b| / max |b| = %.3g", what, maxDiff/maxAbs)
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
