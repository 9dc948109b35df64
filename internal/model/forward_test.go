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
