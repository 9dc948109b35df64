package nn

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/tensor"
)

// benchStep times one training step (ZeroGrad, ForwardBackward, AdamW) of
// a preset's shape and reports tokens/s and achieved GFLOP/s.
func benchStep(b *testing.B, preset string, method Method, B, T int) {
	benchStepPrec(b, preset, method, B, T, FP32)
}

func benchStepPrec(b *testing.B, preset string, method Method, B, T int, prec Precision) {
	cfg, err := presetConfig(preset)
	if err != nil {
		b.Fatal(err)
	}
	w := RandomWeights(cfg, 1)
	n, err := New(cfg, w, Options{Method: method, LoRARank: 8, LoRAAlpha: 8, LoRADropout: 0.1, Seed: 1, Precision: prec})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := &Batch{B: B, T: T, Tokens: make([]int32, B*T), Targets: make([]int32, B*T)}
	for i := range batch.Tokens {
		batch.Tokens[i] = int32(rng.IntN(cfg.VocabSize))
		batch.Targets[i] = int32(rng.IntN(cfg.VocabSize))
	}
	opt := NewAdamW(n.Params())
	ctx := context.Background()
	step := func() {
		n.ZeroGrad()
		if _, _, err := n.ForwardBackward(ctx, batch, 1/float32(B*T)); err != nil {
			b.Fatal(err)
		}
		opt.Step(1e-4)
	}
	step() // allocate activations
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		step()
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	// CPU seconds per step: on a shared machine, a steadier measure of the
	// work than wall time.
	b.ReportMetric((processCPU()-cpu0)/float64(b.N), "cpu-s/step")
	b.ReportMetric(float64(B*T)/sec, "tokens/s")
	b.ReportMetric(n.StepFLOPs(batch)/sec/1e9, "GFLOP/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MiB")
}

func BenchmarkTrainStepTiny(b *testing.B) {
	for _, m := range []Method{LoRA, TFew, Vanilla} {
		b.Run(string(m), func(b *testing.B) { benchStep(b, "tiny", m, 4, 64) })
	}
}

// BenchmarkTrainStepSmolLM2 is the performance target's shape: smollm2-135m,
// batch 8 of 256 tokens.
func BenchmarkTrainStepSmolLM2(b *testing.B) {
	for _, m := range []Method{LoRA, TFew, Vanilla} {
		b.Run(string(m), func(b *testing.B) { benchStep(b, "smollm2-135m", m, 8, 256) })
		b.Run(string(m)+"-b2", func(b *testing.B) { benchStep(b, "smollm2-135m", m, 2, 256) })
		b.Run(string(m)+"-b2-bf16", func(b *testing.B) { benchStepPrec(b, "smollm2-135m", m, 2, 256, BF16) })
		b.Run(string(m)+"-bf16", func(b *testing.B) { benchStepPrec(b, "smollm2-135m", m, 8, 256, BF16) })
	}
}

// BenchmarkPeakFMA reports the machine's FMA-loop peak on GOMAXPROCS
// threads (tensor.MeasurePeakGFLOPS), the reference for the GFLOP/s above.
func BenchmarkPeakFMA(b *testing.B) {
	var g float64
	for b.Loop() {
		g = tensor.MeasurePeakGFLOPS(tensor.Best(), runtime.GOMAXPROCS(0), time.Second)
	}
	b.ReportMetric(g, "peak-GFLOP/s")
}
