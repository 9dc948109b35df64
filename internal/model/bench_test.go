package model

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
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

// readWeights sums every weight once over all CPUs: the memory traffic a
// decode step cannot avoid (the embedding table aside, of which a step
// reads one row).
func readWeights(m *Model) float32 {
	slices := weightSlices(m)
	workers := runtime.GOMAXPROCS(0)
	sums := make([]float32, workers)
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s0, s1, s2, s3, s4, s5, s6, s7 float32
			for _, s := range slices {
				lo, hi := len(s)*wk/workers, len(s)*(wk+1)/workers
				v := s[lo:hi]
				i := 0
				for ; i+8 <= len(v); i += 8 {
					s0 += v[i]
					s1 += v[i+1]
					s2 += v[i+2]
					s3 += v[i+3]
					s4 += v[i+4]
					s5 += v[i+5]
					s6 += v[i+6]
					s7 += v[i+7]
				}
				for ; i < len(v); i++ {
					s0 += v[i]
				}
			}
			sums[wk] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
		}()
	}
	wg.Wait()
	var t float32
	for _, s := range sums {
		t += s
	}
	return t
}

var sink float32

// BenchmarkDecode measures batch-1 incremental decoding (one op = one
// token with a KV cache after an 8-token prompt) and reports tokens/s and
// x-weight-read, the time per token over the time to read the weights
// once. The weight read is timed right after each token (outside the
// benchmark timer), so both see the same load on a shared machine.
func BenchmarkDecode(b *testing.B) {
	for _, preset := range []string{"tiny", "smollm2-135m"} {
		b.Run(preset, func(b *testing.B) {
			m := randomModel(b, preset)
			ctx := context.Background()
			const prompt, steps = 8, 64
			var cache *Cache
			ids := make([]int, prompt)
			var read time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
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
				b.StopTimer()
				t0 := time.Now()
				sink += readWeights(m)
				read += time.Since(t0)
				b.StartTimer()
			}
			perTok := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(1/perTok, "tokens/s")
			b.ReportMetric(b.Elapsed().Seconds()/read.Seconds(), "x-weight-read")
			b.ReportMetric(read.Seconds()*1000/float64(b.N), "weight-read-ms")
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
