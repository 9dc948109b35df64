package tensor

// genericKernel is the portable micro-kernel: a 4×4 tile of scalar
// accumulators, enough for the Go compiler to keep in registers.
var genericKernel = &gemmKernel{
	name: "generic", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024,
	micro: sgemmMicroGeneric,
}

// sgemmMicroGeneric computes the 4×4 tile c = alpha·(Ap·Bp) + beta·c over
// kc steps; Ap holds 4 floats a step (one per row), Bp 4 (one per column).
// It is also the reference the assembly kernels' tiles are checked against.
func sgemmMicroGeneric(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	a = a[:4*kc]
	b = b[:4*kc]
	for p := 0; p < kc; p++ {
		ap := a[4*p : 4*p+4 : 4*p+4]
		bp := b[4*p : 4*p+4 : 4*p+4]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	acc := [4][4]float32{{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}}
	for r := 0; r < 4; r++ {
		row := c[r*ldc : r*ldc+4]
		for j := range row {
			if beta == 0 {
				row[j] = alpha * acc[r][j]
			} else {
				row[j] = alpha*acc[r][j] + beta*row[j]
			}
		}
	}
}
