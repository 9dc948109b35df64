package nn

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/gantryml/gantry/internal/model"
)

// TestFullGrad checks every gradient of a Full network, the embedding and
// the LM head included, against central differences in float64, tied and
// untied.
func TestFullGrad(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		bias, tied bool
	}{{"bias tied", true, true}, {"nobias untied", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			cfg, w := tinyModel(c.bias, c.tied, 11)
			n, err := NewFullOf[float64](cfg, w, Options{Seed: 2})
			if err != nil {
				t.Fatal(err)
			}
			wantParams := 1 + cfg.NumHiddenLayers*(2+7) + 1
			for _, l := range w.Layers {
				for _, ln := range []*model.Linear{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down} {
					if ln.B != nil {
						wantParams++
					}
				}
			}
			if !c.tied {
				wantParams++
			}
			if got := len(n.Params()); got != wantParams {
				names := make([]string, 0, got)
				for _, p := range n.Params() {
					names = append(names, p.Name)
				}
				t.Fatalf("%d params, want %d: %v", got, wantParams, names)
			}
			if n.Params()[0].Name != "model.embed_tokens.weight" {
				t.Errorf("first param %s, want the embedding", n.Params()[0].Name)
			}
			b := tinyBatch()
			loss := func() float64 {
				l, _, err := n.ForwardBackward(ctx, b, 1)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			n.ZeroGrad()
			if l := loss(); l <= 0 || math.IsNaN(l) {
				t.Fatalf("loss %v", l)
			}
			grads := make([][]float64, len(n.Params()))
			for i, p := range n.Params() {
				grads[i] = slices.Clone(p.Grad)
				var norm float64
				for _, g := range p.Grad {
					norm += g * g
				}
				if norm == 0 {
					t.Errorf("%s: zero gradient", p.Name)
				}
			}
			for i, p := range n.Params() {
				gradCheck(t, p.Name, p.Data, grads[i], loss)
			}
		})
	}
}

// TestFullMatchesVanillaOnBlocks checks that the block gradients of a Full
// network equal Vanilla's over all layers (Full only adds the embedding
// and LM head), and that an optimiser step updates the embedding in place.
func TestFullMatchesVanillaOnBlocks(t *testing.T) {
	ctx := context.Background()
	cfg, w := tinyModel(false, false, 5)
	van, err := NewOf[float64](cfg, w, Options{Method: Vanilla})
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewFullOf[float64](cfg, w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lv, _, err := van.ForwardBackward(ctx, tinyBatch(), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	lf, _, err := full.ForwardBackward(ctx, tinyBatch(), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if lv != lf {
		t.Errorf("loss %v (vanilla) vs %v (full)", lv, lf)
	}
	byName := map[string][]float64{}
	for _, p := range full.Params() {
		byName[p.Name] = p.Grad
	}
	for _, p := range van.Params() {
		g := byName[p.Name]
		for i := range p.Grad {
			if d := math.Abs(p.Grad[i] - g[i]); d > 1e-12*(1+math.Abs(p.Grad[i])) {
				t.Fatalf("%s[%d]: vanilla %v, full %v", p.Name, i, p.Grad[i], g[i])
			}
		}
	}

	cfg32, w32 := tinyModel(false, true, 6)
	before := slices.Clone(w32.Embed)
	n, err := NewFull(cfg32, w32, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.ForwardBackward(ctx, tinyBatch(), 1); err != nil {
		t.Fatal(err)
	}
	NewAdamW(n.Params()).Step(1e-2)
	if slices.Equal(before, w32.Embed) {
		t.Error("the embedding did not change in place")
	}
}
