//go:build amd64 && !purego

package tensor

//go:noescape
func gemv4AVX512(w *float32, ldw int, x *float32, n int, y *float32)

//go:noescape
func gemv4AVX2(w *float32, ldw int, x *float32, n int, y *float32)

// gemvRowsKernel computes d[r] = W[r]·x for the rows r0 ≤ r < r1 of the
// row-major W (row stride in) and hands each to set; it reports false,
// doing nothing, where k has no assembly GEMV.
func gemvRowsKernel(k Kernel, w, x []float32, in, r0, r1 int, set func(r int, d float32)) bool {
	var gemv4 func(w *float32, ldw int, x *float32, n int, y *float32)
	switch {
	case in == 0:
		return false
	case k == KernelAVX512 && hasAVX512:
		gemv4 = gemv4AVX512
	case k == KernelAVX2 && hasAVX2:
		gemv4 = gemv4AVX2
	default:
		return false
	}
	_ = w[(r1-1)*in+in-1]
	_ = x[in-1]
	var d [4]float32
	r := r0
	for ; r+4 <= r1; r += 4 {
		gemv4(&w[r*in], in, &x[0], in, &d[0])
		set(r, d[0])
		set(r+1, d[1])
		set(r+2, d[2])
		set(r+3, d[3])
	}
	for ; r < r1; r++ {
		gemv4(&w[r*in], 0, &x[0], in, &d[0])
		set(r, d[0])
	}
	return true
}
