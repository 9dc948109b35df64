//go:build amd64 && !purego

package tensor

//go:noescape
func gemv4AVX512(w *float32, ldw int, x *float32, n int, y *float32)

//go:noescape
func gemvRowsAVX512(w *float32, ldw int, x *float32, n int, y *float32, rows int)

//go:noescape
func gemv4AVX2(w *float32, ldw int, x *float32, n int, y *float32)

//go:noescape
func gemv1x4AVX512(w, x0, x1, x2, x3 *float32, n int, y *float32)

//go:noescape
func gemv1x4AVX2(w, x0, x1, x2, x3 *float32, n int, y *float32)

// gemvBatchKernel computes d = W[r]·x_v for the rows r0 ≤ r < r1 of W
// (row stride in) and the nv vectors x_v = x[v·in:], handing each to
// set(v, r, d); every W row is read once for four vectors at a time. It
// reports false, doing nothing, where k has no assembly kernel.
func gemvBatchKernel(k Kernel, w, x []float32, nv, in, r0, r1 int, set func(v, r int, d float32)) bool {
	var f func(w, x0, x1, x2, x3 *float32, n int, y *float32)
	switch {
	case in == 0:
		return false
	case k == KernelAVX512 && hasAVX512:
		f = gemv1x4AVX512
	case k == KernelAVX2 && hasAVX2:
		f = gemv1x4AVX2
	default:
		return false
	}
	_ = w[(r1-1)*in+in-1]
	_ = x[(nv-1)*in+in-1]
	var d [4]float32
	for v0 := 0; v0 < nv; v0 += 4 {
		g := min(4, nv-v0)
		var xp [4]*float32
		for i := range xp {
			xp[i] = &x[(v0+min(i, g-1))*in]
		}
		for r := r0; r < r1; r++ {
			f(&w[r*in], xp[0], xp[1], xp[2], xp[3], in, &d[0])
			for i := 0; i < g; i++ {
				set(v0+i, r, d[i])
			}
		}
	}
	return true
}

// gemvRowsKernel computes d[r] = W[r]·x for the rows r0 ≤ r < r1 of the
// row-major W (row stride in) and hands each to set; it reports false,
// doing nothing, where k has no assembly GEMV.
func gemvRowsKernel(k Kernel, w, x []float32, in, r0, r1 int, set func(r int, d float32)) bool {
	var gemv4 func(w *float32, ldw int, x *float32, n int, y *float32)
	switch {
	case in == 0:
		return false
	case k == KernelAVX512 && hasAVX512:
		gemv4 = nil // gemvRowsAVX512 below
	case k == KernelAVX2 && hasAVX2:
		gemv4 = gemv4AVX2
	default:
		return false
	}
	_ = w[(r1-1)*in+in-1]
	_ = x[in-1]
	if gemv4 == nil {
		// AVX-512: row after row, W one sequential stream.
		var d [64]float32
		for r := r0; r < r1; r += len(d) {
			rows := min(len(d), r1-r)
			gemvRowsAVX512(&w[r*in], in, &x[0], in, &d[0], rows)
			for i, v := range d[:rows] {
				set(r+i, v)
			}
		}
		return true
	}
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
