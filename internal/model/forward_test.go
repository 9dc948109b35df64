package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// swigluRef is the obviously-correct SwiGLU in float64:
// silu(g)·u = g/(1 + e^−g)·u.
func swigluRef(gate, up []float32) []float64 {
	out := make([]float64, len(gate))
	for i, g := range gate {
		out[i] = float64(g) / (1 + math.Exp(-float64(g))) * float64(up[i])
	}
	return out
}

// TestSwiGLUForward checks the vectorised SwiGLU against swigluRef for
// lengths around its chunk size, with out distinct from, or aliasing, gate
// and up.
func TestSwiGLUForward(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, swigluChunk - 1, swigluChunk, swigluChunk + 1, 3*swigluChunk + 5} {
		for _, alias := range []string{"none", "gate", "up"} {
			gate, up := make([]float32, n), make([]float32, n)
			for i := range gate {
				gate[i] = 8 * float32(r.NormFloat64())
				up[i] = float32(r.NormFloat64())
			}
			want := swigluRef(gate, up)
			var out []float32
			switch alias {
			case "none":
				out = make([]float32, n)
			case "gate":
				out = gate
			case "up":
				out = up
			}
			SwiGLUForward(out, gate, up)
			for i, w := range want {
				// float32 rounding of silu, of the product, and SiLU's 3 ulp.
				if d := math.Abs(float64(out[i]) - w); d > 1e-6*math.Abs(w)+1e-30 {
					t.Fatalf("n=%d alias=%s: out[%d] = %g, want %g", n, alias, i, out[i], w)
				}
			}
		}
	}
}

// attentionRef is the obviously-correct attention of AttentionForward in
// float64, one query and one slot at a time.
func attentionRef(q []float32, cache *Cache, l, B, T, H, window int) []float64 {
	D := cache.Dim
	KVH := cache.KVHeads
	out := make([]float64, B*T*H*D)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			kvBase := (b*KVH + h/(H/KVH)) * cache.MaxT * D
			for t := 0; t < T; t++ {
				self := cache.Len + t
				if !cache.Valid[b*cache.MaxT+self] {
					continue
				}
				qv := q[((b*T+t)*H+h)*D:]
				qpos := cache.PosOf[b*cache.MaxT+self]
				var ws []float64
				var ss []int
				maxS := math.Inf(-1)
				for s := 0; s <= self; s++ {
					if !cache.Valid[b*cache.MaxT+s] || (window > 0 && int(qpos-cache.PosOf[b*cache.MaxT+s]) >= window) {
						continue
					}
					var dot float64
					for i := 0; i < D; i++ {
						dot += float64(qv[i]) * float64(cache.K[l][kvBase+s*D+i])
					}
					dot /= math.Sqrt(float64(D))
					ws, ss = append(ws, dot), append(ss, s)
					maxS = math.Max(maxS, dot)
				}
				var sum float64
				for i := range ws {
					ws[i] = math.Exp(ws[i] - maxS)
					sum += ws[i]
				}
				o := out[((b*T+t)*H+h)*D:]
				for i, s := range ss {
					for d := 0; d < D; d++ {
						o[d] += ws[i] / sum * float64(cache.V[l][kvBase+s*D+d])
					}
				}
			}
		}
	}
	return out
}

// TestAttentionForward checks AttentionForward against attentionRef on
// both of its paths (a few queries with Gemv, a block of queries with
// Sgemm, over more than one block), with padded slots, a filled prefix and
// a sliding window.
func TestAttentionForward(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const B, H, KVH, D = 2, 4, 2, 8
	for _, tc := range []struct{ start, T, window int }{
		{0, 1, 0}, {5, 3, 0}, {0, 9, 0}, {7, attnBlock + 9, 0}, {3, 2*attnBlock + 1, 40}, {60, 2, 16},
	} {
		maxT := tc.start + tc.T
		cache := &Cache{B: B, MaxT: maxT, KVHeads: KVH, Dim: D, Len: tc.start,
			K: [][]float32{make([]float32, B*KVH*maxT*D)}, V: [][]float32{make([]float32, B*KVH*maxT*D)},
			Valid: make([]bool, B*maxT), PosOf: make([]int32, B*maxT), Pos: make([]int, B)}
		for i := range cache.K[0] {
			cache.K[0][i] = 2 * float32(r.NormFloat64())
			cache.V[0][i] = float32(r.NormFloat64())
		}
		for b := 0; b < B; b++ {
			pos := int32(0)
			for s := 0; s < maxT; s++ {
				real := b == 0 || s >= 3 // row 1 left-padded by 3
				cache.Valid[b*maxT+s] = real
				cache.PosOf[b*maxT+s] = pos
				if real {
					pos++
				}
			}
		}
		q := make([]float32, B*tc.T*H*D)
		for i := range q {
			q[i] = 2 * float32(r.NormFloat64())
		}
		out := make([]float32, len(q))
		for i := range out {
			out[i] = float32(math.NaN()) // every output must be written
		}
		AttentionForward(out, q, cache, 0, B, tc.T, H, tc.window)
		want := attentionRef(q, cache, 0, B, tc.T, H, tc.window)
		for i, w := range want {
			if d := math.Abs(float64(out[i]) - w); !(d <= 1e-5*(1+math.Abs(w))) {
				t.Fatalf("start=%d T=%d window=%d: out[%d] = %g, want %g", tc.start, tc.T, tc.window, i, out[i], w)
			}
		}
	}
}

// TestLinearsForward checks that the stacked products of LinearsForward
// are exactly LinearForward's, one row (split over goroutines together) or
// several, with and without bias, for row counts not multiples of four.
func TestLinearsForward(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	const in = 37
	ls := []Linear{
		{W: fill(5 * in), B: fill(5), Out: 5, In: in},
		{W: fill(1 * in), Out: 1, In: in},
		{W: fill(130 * in), B: fill(130), Out: 130, In: in},
	}
	for _, N := range []int{1, 2, 5} {
		x := fill(N * in)
		var outs []Out
		for _, l := range ls {
			outs = append(outs, Out{Y: fill(N * l.Out), L: l})
		}
		LinearsForward(x, N, outs...)
		for i, o := range outs {
			want := make([]float32, N*o.L.Out)
			LinearForward(want, x, o.L, N)
			for j := range want {
				if o.Y[j] != want[j] {
					t.Fatalf("N=%d layer %d: y[%d] = %g, LinearForward gives %g", N, i, j, o.Y[j], want[j])
				}
			}
		}
	}
}
