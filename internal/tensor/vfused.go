package tensor

import (
	"fmt"
	"math"
)

// Fused elementwise kernels for the training step's non-GEMM work: dropout
// with a bit mask, softmax rows (subtract, exp, sum in one pass), the
// attention backward's dS = P∘(dP − D), the row max and arg-max, SwiGLU
// and its gradient, and the sum of squares of RMSNorm.
//
// Each kernel has a portable Go version (the reference, and what other
// CPUs run) and an AVX-512 version (vfused_amd64.s) that performs the same
// float32 operations in the same order: results are bit-identical between
// the two except where the exp polynomial is involved, where they agree as
// vmathGo and the assembly of vmath.go do. Sums are accumulated in float64
// in sixteen lanes (element i goes to lane i mod 16), and the lanes are
// combined pairwise (lane j + lane j+8, then j + j+4, j + j+2, j + j+1), an
// order that depends on the length only (sum16).
//
// The exp is vmath.go's (same constants, same steps, same 2-ulp bound).

// fusedAVX512 reports whether the AVX-512 kernels run: the CPU has them and
// Default() selects them.
func fusedAVX512() bool {
	k := Default().Kernel
	if k == KernelAuto || !k.Available() {
		k = Best()
	}
	return k == KernelAVX512 && fusedAsm
}

// sum16 is the lane-summing order of the kernels: acc[i mod 16] += v[i],
// then the lanes pairwise.
type sum16 [16]float64

func (s *sum16) total() float64 {
	for w := 8; w >= 1; w /= 2 {
		for j := 0; j < w; j++ {
			s[j] += s[j+w]
		}
	}
	return s[0]
}

// DropoutScale sets out[i] = x[i]·(bit i of mask set ? scale : 0): dropout
// with the keep-bits of a mask word array (bit i%64 of mask[i/64]).
// out may be x. It panics if the lengths differ or mask is too short.
func DropoutScale(out, x []float32, mask []uint64, scale float32) {
	checkMask("DropoutScale", len(out), len(x), mask)
	if fusedAVX512() && len(x) > 0 {
		dropoutScaleAVX512(&out[0], &x[0], &mask[0], len(x), scale)
		return
	}
	dropoutScaleGo(out, x, mask, scale)
}

func dropoutScaleGo(out, x []float32, mask []uint64, scale float32) {
	tbl := [2]float32{0, scale}
	out = out[:len(x)]
	for i, v := range x {
		out[i] = v * tbl[mask[i>>6]>>(i&63)&1]
	}
}

// DropoutScaleAdd sets dx[i] += d[i]·(bit i of mask set ? scale : 0), the
// product rounded before the sum (no fused multiply-add). It panics if the
// lengths differ or mask is too short.
func DropoutScaleAdd(dx, d []float32, mask []uint64, scale float32) {
	checkMask("DropoutScaleAdd", len(dx), len(d), mask)
	if fusedAVX512() && len(d) > 0 {
		dropoutScaleAddAVX512(&dx[0], &d[0], &mask[0], len(d), scale)
		return
	}
	dropoutScaleAddGo(dx, d, mask, scale)
}

func dropoutScaleAddGo(dx, d []float32, mask []uint64, scale float32) {
	tbl := [2]float32{0, scale}
	dx = dx[:len(d)]
	for i, v := range d {
		dx[i] += float32(v * tbl[mask[i>>6]>>(i&63)&1])
	}
}

func checkMask(fn string, a, b int, mask []uint64) {
	if a != b {
		panic(fmt.Sprintf("tensor.%s: lengths %d and %d differ", fn, a, b))
	}
	if len(mask) < (b+63)/64 {
		panic(fmt.Sprintf("tensor.%s: %d mask words for %d elements", fn, len(mask), b))
	}
}

// ExpSubSum sets x[i] = e^(x[i] − m) and returns Σ x[i] summed in float64
// in the sum16 order: the softmax numerator and denominator in one pass.
// Each x[i] is exactly Exp of float32(x[i] − m).
func ExpSubSum(x []float32, m float32) float64 {
	return expSubSum(Default().Resolve().Kernel, x, m)
}

func expSubSum(k Kernel, x []float32, m float32) float64 {
	if len(x) == 0 {
		return 0
	}
	if k == KernelAVX512 && fusedAsm {
		return expSubSumAVX512(&x[0], len(x), m)
	}
	for i := range x {
		x[i] -= m
	}
	vmathKernel(k, x, x, modeExp)
	var s sum16
	for i, e := range x {
		s[i&15] += float64(e)
	}
	return s.total()
}

// ExpSubGrad sets p[i] = e^(p[i] − l) and dp[i] = p[i]·(dp[i] − c): the
// attention backward's probabilities, recomputed from the scores and the
// row's log-sum-exp l, and dS = P∘(dP − c) with c = rowsum(dO∘O). It panics
// if the lengths differ.
func ExpSubGrad(p, dp []float32, l, c float32) {
	expSubGrad(Default().Resolve().Kernel, p, dp, l, c)
}

func expSubGrad(k Kernel, p, dp []float32, l, c float32) {
	if len(p) != len(dp) {
		panic(fmt.Sprintf("tensor.ExpSubGrad: lengths %d and %d differ", len(p), len(dp)))
	}
	if len(p) == 0 {
		return
	}
	if k == KernelAVX512 && fusedAsm {
		expSubGradAVX512(&p[0], &dp[0], len(p), l, c)
		return
	}
	for i := range p {
		p[i] -= l
	}
	vmathKernel(k, p, p, modeExp)
	for i, e := range p {
		dp[i] = e * (dp[i] - c)
	}
}

// MaxIndex returns the largest element of x and the index of its first
// occurrence. NaN elements are skipped (if all are NaN it returns x[0]
// and 0). It panics if x is empty.
func MaxIndex(x []float32) (float32, int) {
	if len(x) == 0 {
		panic("tensor.MaxIndex: empty slice")
	}
	if fusedAVX512() && len(x) >= 16 {
		var lanes [16]float32
		var idx [16]int32
		maxIndexAVX512(&x[0], len(x), &lanes, &idx)
		m, arg := lanes[0], int(idx[0])
		for j := 1; j < 16; j++ {
			v, i := lanes[j], int(idx[j])
			if v > m || (v == m && i < arg) {
				m, arg = v, i
			}
		}
		if m == float32(math.Inf(-1)) {
			return maxIndexGo(x) // every element −Inf or NaN
		}
		return m, arg
	}
	return maxIndexGo(x)
}

func maxIndexGo(x []float32) (float32, int) {
	m, arg := x[0], 0
	for i, v := range x {
		if v > m || m != m {
			m, arg = v, i
		}
	}
	if m != m {
		return x[0], 0
	}
	return m, arg
}

// SwiGLU sets sig[i] = σ(g[i]) (Sigmoid's kernel) and out[i] =
// g[i]·sig[i]·u[i], multiplied left to right. sig may be nil (σ not kept:
// SwiGLUGrad can recompute it, bit for bit). It panics if the lengths
// differ.
func SwiGLU(out, sig, g, u []float32) {
	swiglu(Default().Resolve().Kernel, out, sig, g, u)
}

func swiglu(k Kernel, out, sig, g, u []float32) {
	if len(out) != len(g) || (sig != nil && len(sig) != len(g)) || len(u) != len(g) {
		panic(fmt.Sprintf("tensor.SwiGLU: lengths %d, %d, %d and %d differ", len(out), len(sig), len(g), len(u)))
	}
	if len(g) == 0 {
		return
	}
	if sig == nil {
		sig = out // σ goes through out, then out is overwritten element by element
	}
	if k == KernelAVX512 && fusedAsm {
		swigluAVX512(&out[0], &sig[0], &g[0], &u[0], len(g))
		return
	}
	vmathKernel(k, sig, g, modeSigmoid)
	for i := range g {
		out[i] = g[i] * sig[i] * u[i]
	}
}

// SwiGLUGrad writes the gradients of out = g·σ(g)·u given dout and the
// saved s = σ(g): du = dout·g·s and dg = dout·u·s·(1 + g·(1 − s)), each
// product rounded left to right. dg may alias sig. With sig nil, σ(g) is
// recomputed (the values SwiGLU and Sigmoid give). It panics if the
// lengths differ.
func SwiGLUGrad(dg, du, dout, g, u, sig []float32) {
	n := len(g)
	if len(dg) != n || len(du) != n || len(dout) != n || len(u) != n || (sig != nil && len(sig) != n) {
		panic(fmt.Sprintf("tensor.SwiGLUGrad: lengths %d, %d, %d, %d, %d and %d differ", len(dg), len(du), len(dout), n, len(u), len(sig)))
	}
	if n == 0 {
		return
	}
	k := Default().Resolve().Kernel
	if k == KernelAVX512 && fusedAsm {
		if sig == nil {
			swigluGradSigAVX512(&dg[0], &du[0], &dout[0], &g[0], &u[0], n)
			return
		}
		swigluGradAVX512(&dg[0], &du[0], &dout[0], &g[0], &u[0], &sig[0], n)
		return
	}
	if sig != nil {
		swigluGradGo(dg, du, dout, g, u, sig)
		return
	}
	var buf [256]float32
	for i0 := 0; i0 < n; i0 += len(buf) {
		i1 := min(n, i0+len(buf))
		s := buf[:i1-i0]
		vmathKernel(k, s, g[i0:i1], modeSigmoid)
		swigluGradGo(dg[i0:i1], du[i0:i1], dout[i0:i1], g[i0:i1], u[i0:i1], s)
	}
}

func swigluGradGo(dg, du, dout, g, u, sig []float32) {
	for i := range g {
		gv, s := g[i], sig[i]
		uv, d := u[i], dout[i]
		du[i] = d * gv * s
		dg[i] = d * uv * s * (1 + gv*(1-s))
	}
}

// SumSquares returns Σ x[i]² in float64 (each square is exact) in the
// sum16 order.
func SumSquares(x []float32) float64 {
	if fusedAVX512() && len(x) > 0 {
		return sumSquaresAVX512(&x[0], len(x))
	}
	var s sum16
	for i, v := range x {
		s[i&15] += float64(v) * float64(v)
	}
	return s.total()
}

// ScaleMul sets out[i] = x[i]·r·w[i], multiplied left to right (RMSNorm's
// output row). out may be x. It panics if the lengths differ.
func ScaleMul(out, x []float32, r float32, w []float32) {
	if len(out) != len(x) || len(w) != len(x) {
		panic(fmt.Sprintf("tensor.ScaleMul: lengths %d, %d and %d differ", len(out), len(x), len(w)))
	}
	if fusedAVX512() && len(x) > 0 {
		scaleMulAVX512(&out[0], &x[0], &w[0], len(x), r)
		return
	}
	for i, v := range x {
		out[i] = v * r * w[i]
	}
}

// AddTo sets dst[i] = x[i] + y[i] (a residual connection). dst may be x or
// y. It panics if the lengths differ.
func AddTo(dst, x, y []float32) {
	if len(dst) != len(x) || len(y) != len(x) {
		panic(fmt.Sprintf("tensor.AddTo: lengths %d, %d and %d differ", len(dst), len(x), len(y)))
	}
	if fusedAVX512() && len(x) > 0 {
		addSumSquaresAVX512(&dst[0], &x[0], &y[0], len(x))
		return
	}
	for i, v := range x {
		dst[i] = v + y[i]
	}
}

// AddSumSquares sets dst[i] = x[i] + y[i] and returns Σ dst[i]² in float64
// in the sum16 order (SumSquares of the result): a residual connection and
// the RMSNorm statistic of its output in one pass. dst may be x or y. It
// panics if the lengths differ.
func AddSumSquares(dst, x, y []float32) float64 {
	if len(dst) != len(x) || len(y) != len(x) {
		panic(fmt.Sprintf("tensor.AddSumSquares: lengths %d, %d and %d differ", len(dst), len(x), len(y)))
	}
	if fusedAVX512() && len(x) > 0 {
		return addSumSquaresAVX512(&dst[0], &x[0], &y[0], len(x))
	}
	var s sum16
	for i, v := range x {
		h := v + y[i]
		dst[i] = h
		s[i&15] += float64(h) * float64(h)
	}
	return s.total()
}

// RMSNormGradRow adds ∂L/∂x of one RMSNorm row out = x·r·w to dx given
// dout: with c = Σ_j ((dout[j]·w[j])·x[j])·r / n (the products rounded in
// float32 left to right, summed in float64 in the sum16 order, c rounded
// to float32), dx[j] += r·(dout[j]·w[j] − (x[j]·r)·c). It panics if the
// lengths differ.
func RMSNormGradRow(dx, dout, x, w []float32, r float32) {
	n := len(x)
	if len(dx) != n || len(dout) != n || len(w) != n {
		panic(fmt.Sprintf("tensor.RMSNormGradRow: lengths %d, %d, %d and %d differ", len(dx), len(dout), n, len(w)))
	}
	if n == 0 {
		return
	}
	if fusedAVX512() {
		c := float32(rmsGradDotAVX512(&dout[0], &x[0], &w[0], n, r) / float64(n))
		rmsGradAddAVX512(&dx[0], &dout[0], &x[0], &w[0], n, r, c)
		return
	}
	var s sum16
	for j, v := range x {
		s[j&15] += float64(dout[j] * w[j] * v * r)
	}
	c := float32(s.total() / float64(n))
	for j, v := range x {
		dx[j] += r * (dout[j]*w[j] - v*r*c)
	}
}

// RotateHalf rotates every head of the row x [heads·D] by the angles of
// cos, sin [D/2] with the rotate_half convention (RoPE): for i < D/2,
// (x[i], x[i+D/2]) becomes (x[i]·c − x[i+D/2]·s, x[i+D/2]·c + x[i]·s),
// products rounded before the sum; with back, by the opposite angle (s
// negated). It panics if the lengths do not fit.
func RotateHalf(x, cos, sin []float32, heads, D int, back bool) {
	h := D / 2
	if D%2 != 0 || len(x) != heads*D || len(cos) < h || len(sin) < h {
		panic(fmt.Sprintf("tensor.RotateHalf: %d elements for %d heads of %d, %d and %d angles", len(x), heads, D, len(cos), len(sin)))
	}
	if fusedAVX512() && h%16 == 0 && heads > 0 {
		sign := float32(1)
		if back {
			sign = -1
		}
		rotateHalfAVX512(&x[0], &cos[0], &sin[0], heads, h, sign)
		return
	}
	for hd := 0; hd < heads; hd++ {
		v := x[hd*D : (hd+1)*D]
		for j := 0; j < h; j++ {
			x1, x2, sj := v[j], v[j+h], sin[j]
			if back {
				sj = -sj
			}
			v[j] = x1*cos[j] - x2*sj
			v[j+h] = x2*cos[j] + x1*sj
		}
	}
}

// Max returns the largest element of x, skipping NaNs (−Inf if x is empty
// or all NaN): the row maximum of a softmax.
func Max(x []float32) float32 {
	if fusedAVX512() && len(x) > 0 {
		return maxAVX512(&x[0], len(x))
	}
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}
