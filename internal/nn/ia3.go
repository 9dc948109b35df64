package nn

import (
	"runtime"

	"github.com/gantryml/gantry/internal/tensor"
)

// The (IA)³ adapter on down_proj's input fused with the SwiGLU that
// produces that input: the block's MLP is
// y = ((g·σ(g)·u)∘l)·W_downᵀ, g, u [N, I], l [I] (the learned scale).
// The forward writes the scaled SwiGLU output in one pass; the backward
// turns dz = ∂L/∂((g·σ(g)·u)∘l) into dg, du and dl in one pass, with the
// unscaled SwiGLU output recomputed in registers (never stored). The
// results are the bits of SwiGLUForward, IA3Forward, IA3Backward and
// SwiGLUBackward run one after the other.

// SwiGLUIA3Forward sets z = (g·σ(g)·u)∘l: z, g, u [N, I]; l [I].
// z must not alias g or u.
func SwiGLUIA3Forward[F Float](z, g, u, l []F, N, I int) {
	parallelChunks(N, rowChunk(I), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			zi, gi, ui := z[i*I:(i+1)*I], g[i*I:(i+1)*I], u[i*I:(i+1)*I]
			if is32[F]() {
				tensor.SwiGLUScale(as32(zi), as32(gi), as32(ui), as32(l[:I]))
				continue
			}
			sigmoidSlice(zi, gi) // σ through zi, overwritten element by element
			for j := range zi {
				zi[j] = gi[j] * zi[j] * ui[j] * l[j]
			}
		}
	})
}

// SwiGLUIA3Backward is the backward of SwiGLUIA3Forward: given dz [N, I]
// (only read) it accumulates dl += Σ_rows dz∘(g·σ(g)·u) (summed in row
// order, columns split over threads: independent of the thread count) and
// writes dg, du [N, I], the gradients of g and u through dz∘l.
func SwiGLUIA3Backward[F Float](dg, du, dl, dz, g, u, l []F, N, I int) {
	// One wide column block per thread: each row's block is then a long
	// contiguous run of the five N×I streams (~1.4× faster than 64 columns
	// at N, I = 2048, 1536). The split does not change the sums.
	chunk := max(colChunk, ((I+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)+15)&^15)
	parallelChunks(I, chunk, func(j0, j1 int) {
		if is32[F]() {
			tensor.SwiGLUScaleGrad(as32(dg), as32(du), as32(dl), as32(dz), as32(g), as32(u), as32(l), N, I, j0, j1)
			return
		}
		s := make([]F, j1-j0)
		for i := 0; i < N; i++ {
			o := i * I
			sigmoidSlice(s, g[o+j0:o+j1])
			for j := j0; j < j1; j++ {
				gv, sv, uv, d := g[o+j], s[j-j0], u[o+j], dz[o+j]
				dl[j] += d * (gv * sv * uv)
				d *= l[j]
				du[o+j] = d * gv * sv
				dg[o+j] = d * uv * sv * (1 + gv*(1-sv))
			}
		}
	})
}
