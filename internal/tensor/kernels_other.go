//go:build !amd64 || purego

package tensor

// impl returns the micro-kernel for k, or nil where this build cannot run
// it: only the portable kernel exists off amd64 (or with -tags purego).
func (k Kernel) impl() *gemmKernel {
	switch k {
	case KernelAuto, KernelGeneric:
		return genericKernel
	}
	return nil
}

// packFast has no fast path off amd64.
func packFast(dst, src []float32, transposed bool, ld, w, kc int) bool { return false }

// bf16Kernel does not exist off amd64.
var bf16Kernel *gemmKernel

// roundBF16Slice sets x[i] = roundBF16(x[i]).
func roundBF16Slice(x []float32) {
	for i, v := range x {
		x[i] = roundBF16(v)
	}
}

// widenBF16 sets dst[i] = FromBF16(src[i]) for len(src) values.
func widenBF16(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = FromBF16(h)
	}
}
