package model

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/tensor"
)

// randomModel builds a preset's model in memory with small random weights.
func randomModel(tb testing.TB, preset string) *Model {
	tb.Helper()
	raw, err := PresetConfig(preset)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := ParseConfig(mustJSON(tb, raw))
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	fill := func(n int, scale float32, base float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = base + scale*float32(r.NormFloat64())
		}
		return v
	}
	C, D, I := cfg.HiddenSize, cfg.Dim(), cfg.IntermediateSize
	lin := func(out, in int, bias bool) Linear {
		l := Linear{W: fill(out*in, 0.02, 0), Out: out, In: in}
		if bias {
			l.B = fill(out, 0.02, 0)
		}
		return l
	}
	w := Weights{Embed: fill(cfg.VocabSize*C, 0.02, 0), Norm: fill(C, 0.1, 1)}
	w.LMHead = w.Embed
	if !cfg.TieWordEmbeddings {
		w.LMHead = fill(cfg.VocabSize*C, 0.02, 0)
	}
	for l := 0; l < cfg.NumHiddenLayers; l++ {
		w.Layers = append(w.Layers, Layer{
			InputNorm: fill(C, 0.1, 1), PostAttnNorm: fill(C, 0.1, 1),
			Q: lin(cfg.NumAttentionHeads*D, C, cfg.QKVBias()), K: lin(cfg.NumKeyValueHeads*D, C, cfg.QKVBias()),
			V: lin(cfg.NumKeyValueHeads*D, C, cfg.QKVBias()), O: lin(C, cfg.NumAttentionHeads*D, cfg.OBias()),
			Gate: lin(I, C, false), Up: lin(I, C, false), Down: lin(C, I, false),
		})
	}
	m, err := New(cfg, w)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// weightSlices lists every distinct weight buffer of m.
func weightSlices(m *Model) [][]float32 {
	w := &m.Weights
	out := [][]float32{w.Norm, w.LMHead}
	for _, l := range w.Layers {
		out = append(out, l.InputNorm, l.PostAttnNorm)
		for _, lin := range []Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			out = append(out, lin.W, lin.B)
		}
	}
	return out
}

// weightBytes is the number of bytes of weights a decode step reads: every
// weight once (the embedding table aside, of which a step reads one row;
// tied to the LM head, it is counted once as that).
func weightBytes(m *Model) int64 {
	var n int64
	for _, s := range weightSlices(m) {
		n += 4 * int64(len(s))
	}
	return n
}

// streamBuf is the size of the buffer streamRead reads: 1 GiB, more than
// three times this machine's L3, as in tensor's BenchmarkStreamRead.
const streamBuf = 1 << 30

// streamRead measures memory read bandwidth in bytes per second the way
// tensor's BenchmarkStreamRead does: one tensor.Gemv (vectorised, on all
// CPUs) over W, a [len(y), len(x)] matrix filled beforehand so its pages
// are real, reads every byte of W once from DRAM.
func streamRead(W, x, y []float32) float64 {
	t0 := time.Now()
	tensor.Gemv(y, W, x, len(y), len(x), 0)
	return float64(4*len(W)) / time.Since(t0).Seconds()
}

var sink float32

// BenchmarkDecode measures batch-1 incremental decoding (one op = one
// token with a KV cache after an 8-token prompt) and reports tokens/s, the
// memory bandwidth read-GB/s measured with streamRead, weight-read-ms, the
// time to read the weights once at that bandwidth (the memory bound a
// batch-1 step approaches; part of the weights may stay in a large L3),
// and x-weight-read, the time per token over that bound. The
// bandwidth is measured, outside the benchmark timer, before every 16
// tokens, so tokens and reads see the same load on a shared machine; the
// mean bandwidth is reported, as the mean time per token is.
func BenchmarkDecode(b *testing.B) {
	const in = 4096
	W := make([]float32, streamBuf/4)
	for i := range W {
		W[i] = float32(i & 7)
	}
	x, y := make([]float32, in), make([]float32, len(W)/in)
	for _, preset := range []string{"tiny", "smollm2-135m"} {
		b.Run(preset, func(b *testing.B) {
			m := randomModel(b, preset)
			ctx := context.Background()
			const prompt, steps = 8, 64
			var cache *Cache
			ids := make([]int, prompt)
			var bw float64
			reads := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%16 == 0 {
					b.StopTimer()
					bw += streamRead(W, x, y)
					reads++
					b.StartTimer()
				}
				if i%steps == 0 {
					b.StopTimer()
					var err error
					if cache, err = m.NewCache(1, prompt+steps); err != nil {
						b.Fatal(err)
					}
					if _, err := m.Forward(ctx, cache, ids, nil, 1, prompt, true); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := m.Forward(ctx, cache, []int{i % m.Config.VocabSize}, nil, 1, 1, true); err != nil {
					b.Fatal(err)
				}
			}
			perTok := b.Elapsed().Seconds() / float64(b.N)
			bw /= float64(reads)
			bound := float64(weightBytes(m)) / bw
			sink += y[0]
			b.ReportMetric(1/perTok, "tokens/s")
			b.ReportMetric(bw/1e9, "read-GB/s")
			b.ReportMetric(bound*1000, "weight-read-ms")
			b.ReportMetric(perTok/bound, "x-weight-read")
		})
	}
}

// BenchmarkPrefill measures a 128-token batch-1 forward pass.
func BenchmarkPrefill(b *testing.B) {
	for _, preset := range []string{"tiny", "smollm2-135m"} {
		b.Run(preset, func(b *testing.B) {
			m := randomModel(b, preset)
			ids := make([]int, 128)
			for i := range ids {
				ids[i] = i
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(context.Background(), nil, ids, nil, 1, len(ids), true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
