package tensor

import "fmt"

// The vector kernels below are portable Go. Their summation orders are
// fixed (they depend on the length only), so results are reproducible.

// Dot returns Σ x[i]·y[i]. It sums in eight interleaved partial sums
// combined pairwise, which is both faster and more accurate than one
// running sum. It panics if the lengths differ.
func Dot(x, y []float32) float32 {
	if len(x) != len(y) {
		panic(fmt.Sprintf("tensor.Dot: lengths %d and %d differ", len(x), len(y)))
	}
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		xs, ys := x[i:i+8:i+8], y[i:i+8:i+8]
		s0 += xs[0] * ys[0]
		s1 += xs[1] * ys[1]
		s2 += xs[2] * ys[2]
		s3 += xs[3] * ys[3]
		s4 += xs[4] * ys[4]
		s5 += xs[5] * ys[5]
		s6 += xs[6] * ys[6]
		s7 += xs[7] * ys[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// Axpy sets y[i] += alpha·x[i]. It panics if the lengths differ.
func Axpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("tensor.Axpy: lengths %d and %d differ", len(x), len(y)))
	}
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Scale sets x[i] *= alpha.
func Scale(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

// Add sets dst[i] = x[i] + y[i]. It panics if the lengths differ.
func Add(dst, x, y []float32) {
	if len(x) != len(y) || len(dst) != len(x) {
		panic(fmt.Sprintf("tensor.Add: lengths %d, %d and %d differ", len(dst), len(x), len(y)))
	}
	for i, v := range x {
		dst[i] = v + y[i]
	}
}

// Sum returns Σ x[i] with the same fixed pairwise order as Dot.
func Sum(x []float32) float32 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		xs := x[i : i+8 : i+8]
		s0 += xs[0]
		s1 += xs[1]
		s2 += xs[2]
		s3 += xs[3]
		s4 += xs[4]
		s5 += xs[5]
		s6 += xs[6]
		s7 += xs[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
