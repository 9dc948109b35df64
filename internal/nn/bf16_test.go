package nn

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/gantryml/gantry/internal/tensor"
)

// TestBF16Gradients checks that under BF16 the loss and every parameter
// gradient stay within bf16's rounding (8 significant bits on the frozen
// weights and the other operand of their products) of the exact float32
// network's, for every method, and that the frozen weights are in fact
// rounded (the results differ from float32).
func TestBF16Gradients(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		tied bool
		opt  Options
	}{
		{"lora", true, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 4, Seed: 3}},
		{"lora dropout untied", false, Options{Method: LoRA, LoRARank: 3, LoRAAlpha: 3, LoRADropout: 0.3, Seed: 4}},
		{"tfew", true, Options{Method: TFew, Seed: 5}},
		{"vanilla last 1", false, Options{Method: Vanilla, NumLastLayers: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(p Precision) (float64, [][]float32) {
				cfg, w := tinyModel(false, c.tied, 7)
				opt := c.opt
				opt.Precision = p
				n, err := New(cfg, w, opt)
				if err != nil {
					t.Fatal(err)
				}
				if c.opt.Method != Vanilla {
					perturbAdapters(n, 1)
				}
				n.ZeroGrad()
				loss, _, err := n.ForwardBackward(ctx, tinyBatch(), 1)
				if err != nil {
					t.Fatal(err)
				}
				var g [][]float32
				for _, p := range n.Params() {
					g = append(g, p.Grad)
				}
				return loss, g
			}
			l32, g32 := run(FP32)
			l16, g16 := run(BF16)
			// Deterministic: the same bits again on one thread.
			procs := runtime.GOMAXPROCS(1)
			l16b, g16b := run(BF16)
			runtime.GOMAXPROCS(procs)
			if l16b != l16 {
				t.Errorf("bf16 loss %v on one thread, %v on %d", l16b, l16, procs)
			}
			for i := range g16 {
				if !slices.Equal(g16[i], g16b[i]) {
					t.Errorf("param %d: bf16 gradient differs between 1 and %d threads", i, procs)
				}
			}
			if d := math.Abs(l16-l32) / l32; d > 1e-2 || d == 0 {
				t.Errorf("loss fp32 %v, bf16 %v: relative difference %.2g, want in (0, 1e-2]", l32, l16, d)
			}
			var worst, num, den float64
			for i := range g32 {
				var pn, pd float64
				for j := range g32[i] {
					d := float64(g16[i][j] - g32[i][j])
					pn += d * d
					pd += float64(g32[i][j]) * float64(g32[i][j])
				}
				num, den = num+pn, den+pd
				rel := math.Sqrt(pn / pd)
				worst = max(worst, rel)
				// bf16 keeps 8 bits (relative rounding 2^-9 ≈ 0.002 per value);
				// tinyModel's weights are scaled up so that attention is sharp,
				// which amplifies rounding through the layers: a parameter's
				// gradient may move by a few percent, never by its own size as
				// a wrong product would.
				if rel > 0.1 {
					t.Errorf("param %d: bf16 gradient differs from fp32 by %.3g (relative L2), want ≤ 0.1", i, rel)
				}
			}
			if all := math.Sqrt(num / den); all > 0.05 {
				t.Errorf("all gradients: bf16 differs from fp32 by %.3g (relative L2), want ≤ 0.05", all)
			}
			if worst == 0 {
				t.Error("bf16 gradients equal fp32's exactly: the frozen weights were not rounded")
			}
			t.Logf("loss fp32 %.6f bf16 %.6f; worst gradient relative L2 difference %.2g", l32, l16, worst)
		})
	}
}

// TestBF16Storage checks what BF16 stores: bf16 frozen projections, the
// embedding and LM head, float32 trainable vanilla layers, and that the
// options are validated.
func TestBF16Storage(t *testing.T) {
	cfg, w := tinyModel(false, true, 2)
	n, err := New(cfg, w, Options{Method: Vanilla, NumLastLayers: 1, Precision: BF16})
	if err != nil {
		t.Fatal(err)
	}
	for l, bl := range n.blocks {
		for i, ln := range bl.lin {
			frozen := l < n.lowest
			if frozen && (ln.wp == nil || !ln.wp.BF16() || ln.w != nil || ln.wh != nil) {
				t.Errorf("layer %d %s: frozen weight not stored as packed bf16 only", l, linearShort[i])
			}
			if !frozen && (ln.wh != nil || ln.wp != nil || ln.w == nil) {
				t.Errorf("layer %d %s: trainable weight not float32", l, linearShort[i])
			}
		}
	}
	if n.embedP == nil || !n.embedP.BF16() || n.embed != nil || n.embedH != nil || n.lmHeadP != n.embedP {
		t.Error("tied embedding and LM head not stored once as packed bf16")
	}
	row := make([]float32, n.C)
	n.embedP.Row(row, 0)
	if got, want := tensor.ToBF16(row[5]), tensor.ToBF16(w.Embed[5]); got != want {
		t.Errorf("embedding value %#x, want %#x", got, want)
	}
	// fp32: frozen projections, embedding and LM head packed, except the
	// Vanilla embedding (NewFull trains it).
	for _, m := range []Method{LoRA, Vanilla} {
		n, err := New(cfg, w, Options{Method: m, LoRARank: 2, LoRAAlpha: 4, NumLastLayers: 1})
		if err != nil {
			t.Fatal(err)
		}
		for l, bl := range n.blocks {
			for i, ln := range bl.lin {
				if frozen := ln.dw == nil; frozen != (ln.wp != nil) || frozen == (ln.w != nil) || ln.wp != nil && ln.wp.BF16() {
					t.Errorf("%s layer %d %s: frozen %v, packed %v, float32 %v", m, l, linearShort[i], frozen, ln.wp != nil, ln.w != nil)
				}
			}
		}
		if packed := n.embedP != nil; packed != (m != Vanilla) || packed == (n.embed != nil) {
			t.Errorf("%s: embedding packed %v, float32 %v", m, packed, n.embed != nil)
		}
	}
	if _, err := NewOf[float64](cfg, w, Options{Method: TFew, Precision: BF16}); !errors.Is(err, ErrOptions) {
		t.Errorf("float64 bf16 network: error %v, want ErrOptions", err)
	}
	if _, err := New(cfg, w, Options{Method: TFew, Precision: "fp8"}); !errors.Is(err, ErrOptions) {
		t.Errorf("precision fp8: error %v, want ErrOptions", err)
	}
	for s, want := range map[string]Precision{"": FP32, "fp32": FP32, "BF16": BF16, "bfloat16": BF16} {
		if got, err := ParsePrecision(s); err != nil || got != want {
			t.Errorf("ParsePrecision(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	if _, err := ParsePrecision("fp16"); !errors.Is(err, ErrOptions) {
		t.Errorf("ParsePrecision(fp16): error %v, want ErrOptions", err)
	}
}

// TestBF16Evaluate checks Evaluate under BF16 against float32.
func TestBF16Evaluate(t *testing.T) {
	ctx := context.Background()
	var loss [2]float64
	for i, p := range []Precision{FP32, BF16} {
		cfg, w := tinyModel(true, false, 3)
		n, err := New(cfg, w, Options{Method: TFew, Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		if loss[i], _, _, err = n.Evaluate(ctx, tinyBatch()); err != nil {
			t.Fatal(err)
		}
	}
	if d := math.Abs(loss[1]-loss[0]) / loss[0]; d > 1e-2 || d == 0 {
		t.Errorf("evaluation loss fp32 %v, bf16 %v: relative difference %.2g", loss[0], loss[1], d)
	}
}
