//go:build amd64 && !purego

package tensor

//go:noescape
func vmathAVX512(dst, src *float32, n, mode int)

//go:noescape
func vmathAVX2(dst, src *float32, n, mode int)

// vmathKernel runs mode over x into dst (same length) with kernel k: the
// whole vectors in assembly, the tail through a padded buffer so that
// every element goes through the same instructions.
func vmathKernel(k Kernel, dst, x []float32, mode int) {
	var f func(dst, src *float32, n, mode int)
	w := 0
	switch {
	case k == KernelAVX512 && hasAVX512:
		f, w = vmathAVX512, 16
	case k == KernelAVX2 && hasAVX2:
		f, w = vmathAVX2, 8
	default:
		vmathGo(dst, x, mode)
		return
	}
	n := len(x) / w * w
	if n > 0 {
		_, _ = dst[n-1], x[n-1]
		f(&dst[0], &x[0], n, mode)
	}
	if n < len(x) {
		var buf [16]float32
		copy(buf[:], x[n:])
		f(&buf[0], &buf[0], w, mode)
		copy(dst[n:], buf[:len(x)-n])
	}
}
