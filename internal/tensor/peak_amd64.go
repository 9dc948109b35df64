//go:build amd64 && !purego

package tensor

// fmaLoopFor returns the FMA loop in kernel k's vector width and the
// flops one of its iterations does (12 FMAs of 16 or 8 lanes, 2 flops each).
func fmaLoopFor(k Kernel) (func(iters int), float64) {
	switch k {
	case KernelAuto:
		return fmaLoopFor(Best())
	case KernelAVX512:
		if hasAVX512 {
			return fmaLoopAVX512, 12 * 16 * 2
		}
	case KernelAVX2:
		if hasAVX2 {
			return fmaLoopAVX2, 12 * 8 * 2
		}
	}
	return nil, 0
}
