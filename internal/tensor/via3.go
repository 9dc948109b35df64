package tensor

import "fmt"

// Fused kernels of the (IA)³ adapter on down_proj's input (T-Few): the
// SwiGLU output z = g·σ(g)·u is scaled column-wise by the learned vector
// l before the down projection, y = (z∘l)·Wᵀ. The forward writes z∘l in
// one pass (SwiGLUScale); the backward, given dy = ∂L/∂(z∘l), accumulates
// dl += Σ_rows dy∘z and the SwiGLU gradients of dz = dy∘l in one pass over
// a block of columns (SwiGLUScaleGrad), recomputing σ(g) and z instead of
// reading them. The products are rounded as the unfused steps (SwiGLU,
// then the scale, SwiGLUGrad) round them: the results are bit-identical to
// those steps run one after the other.

// SwiGLUScale sets out[j] = (g[j]·σ(g[j])·u[j])·l[j], multiplied left to
// right, σ as SwiGLU's: one row of the scaled SwiGLU output. out may be g
// or u. It panics if the lengths differ.
func SwiGLUScale(out, g, u, l []float32) {
	swigluScale(Default().Resolve().Kernel, out, g, u, l)
}

func swigluScale(k Kernel, out, g, u, l []float32) {
	n := len(g)
	if len(out) != n || len(u) != n || len(l) != n {
		panic(fmt.Sprintf("tensor.SwiGLUScale: lengths %d, %d, %d and %d differ", len(out), n, len(u), len(l)))
	}
	if n == 0 {
		return
	}
	if k == KernelAVX512 && fusedAsm {
		swigluScaleAVX512(&out[0], &g[0], &u[0], &l[0], n)
		return
	}
	var buf [256]float32
	for i0 := 0; i0 < n; i0 += len(buf) {
		i1 := min(n, i0+len(buf))
		s := buf[:i1-i0]
		vmathKernel(k, s, g[i0:i1], modeSigmoid)
		for i := i0; i < i1; i++ {
			out[i] = g[i] * s[i-i0] * u[i] * l[i]
		}
	}
}

// SwiGLUScaleGrad runs the backward of out = (g·σ(g)·u)∘l on columns
// j0..j1 of rows×stride row-major matrices dg, du, dy, g, u (l and dl have
// stride elements). For each row in order and each column j in [j0, j1),
// with s = σ(g) and z = g·s·u:
//
//	dl[j] += dy·z
//	d      = dy·l[j]
//	du     = d·g·s
//	dg     = d·u·s·(1 + g·(1 − s))
//
// every product rounded left to right (SwiGLUGrad's formulas). The sums in
// dl run in row order, so splitting the columns over threads does not
// change them. dy is only read. It panics if a length is short or the
// column range is out of bounds.
func SwiGLUScaleGrad(dg, du, dl, dy, g, u, l []float32, rows, stride, j0, j1 int) {
	swigluScaleGrad(Default().Resolve().Kernel, dg, du, dl, dy, g, u, l, rows, stride, j0, j1)
}

func swigluScaleGrad(k Kernel, dg, du, dl, dy, g, u, l []float32, rows, stride, j0, j1 int) {
	if rows < 0 || j0 < 0 || j1 < j0 || j1 > stride || len(dl) < stride || len(l) < stride {
		panic(fmt.Sprintf("tensor.SwiGLUScaleGrad: columns [%d, %d) of %d rows × %d (dl %d, l %d)", j0, j1, rows, stride, len(dl), len(l)))
	}
	if rows == 0 || j1 == j0 {
		return
	}
	need := (rows-1)*stride + j1
	for _, x := range [][]float32{dg, du, dy, g, u} {
		if len(x) < need {
			panic(fmt.Sprintf("tensor.SwiGLUScaleGrad: a matrix of length %d, want ≥ %d", len(x), need))
		}
	}
	if k == KernelAVX512 && fusedAsm {
		swigluScaleGradAVX512(&dg[j0], &du[j0], &dl[j0], &dy[j0], &g[j0], &u[j0], &l[j0], rows, stride, j1-j0)
		return
	}
	var buf [256]float32
	for i := 0; i < rows; i++ {
		o := i * stride
		for c0 := j0; c0 < j1; c0 += len(buf) {
			c1 := min(j1, c0+len(buf))
			s := buf[:c1-c0]
			vmathKernel(k, s, g[o+c0:o+c1], modeSigmoid)
			for j := c0; j < c1; j++ {
				gv, sv, uv, d := g[o+j], s[j-c0], u[o+j], dy[o+j]
				dl[j] += d * (gv * sv * uv)
				d *= l[j]
				du[o+j] = d * gv * sv
				dg[o+j] = d * uv * sv * (1 + gv*(1-sv))
			}
		}
	}
}

// ScaleGrad runs the backward of out = x∘l (an (IA)³ scale on rows×stride
// row-major matrices, l of stride elements) on columns j0..j1: for each
// row in order and each column j in [j0, j1),
//
//	dl[j] += dy·x   (when dl is not nil)
//	dx     = dy·l[j]
//
// The sums in dl run in row order, so splitting the columns over threads
// does not change them. dx may be dy. It panics if a length is short or
// the column range is out of bounds.
func ScaleGrad(dx, dl, dy, x, l []float32, rows, stride, j0, j1 int) {
	scaleGrad(Default().Resolve().Kernel, dx, dl, dy, x, l, rows, stride, j0, j1)
}

func scaleGrad(k Kernel, dx, dl, dy, x, l []float32, rows, stride, j0, j1 int) {
	if rows < 0 || j0 < 0 || j1 < j0 || j1 > stride || (dl != nil && len(dl) < stride) || len(l) < stride {
		panic(fmt.Sprintf("tensor.ScaleGrad: columns [%d, %d) of %d rows × %d (dl %d, l %d)", j0, j1, rows, stride, len(dl), len(l)))
	}
	if rows == 0 || j1 == j0 {
		return
	}
	need := (rows-1)*stride + j1
	for _, m := range [][]float32{dx, dy, x} {
		if len(m) < need {
			panic(fmt.Sprintf("tensor.ScaleGrad: a matrix of length %d, want ≥ %d", len(m), need))
		}
	}
	if k == KernelAVX512 && fusedAsm {
		var pdl *float32
		if dl != nil {
			pdl = &dl[j0]
		}
		scaleGradAVX512(&dx[j0], pdl, &dy[j0], &x[j0], &l[j0], rows, stride, j1-j0)
		return
	}
	for i := 0; i < rows; i++ {
		o := i * stride
		for j := j0; j < j1; j++ {
			d := dy[o+j]
			if dl != nil {
				dl[j] += d * x[o+j]
			}
			dx[o+j] = d * l[j]
		}
	}
}
