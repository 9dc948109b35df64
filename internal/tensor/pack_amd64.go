//go:build amd64 && !purego

package tensor

//go:noescape
func packTransposedAVX(dst, src *float32, ld, rows, kc, w int)

//go:noescape
func packTransposed8AVX(dst, src *float32, ld, kc8, w int)

//go:noescape
func packCopyAVX(dst, src *float32, ld, w, kc int)

//go:noescape
func packCopyAVX512(dst, src *float32, ld, w, kc int)

//go:noescape
func roundBF16AVX512(x *float32, n int)

//go:noescape
func widenBF16AVX512(dst *float32, src *uint16, n int)

// widenBF16 sets dst[i] = FromBF16(src[i]) for len(src) values, with
// AVX-512 where the CPU has it.
func widenBF16(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	n := len(src) &^ 15
	if hasAVX512 && n > 0 {
		widenBF16AVX512(&dst[0], &src[0], n)
		dst, src = dst[n:], src[n:]
	}
	for i, h := range src {
		dst[i] = FromBF16(h)
	}
}

// roundBF16Slice sets x[i] = roundBF16(x[i]): AVX-512 integer steps where
// the CPU has them (the same bits as ToBF16), Go for the rest.
func roundBF16Slice(x []float32) {
	n := len(x) &^ 15
	if hasAVX512 && n > 0 {
		roundBF16AVX512(&x[0], n)
		x = x[n:]
	}
	for i, v := range x {
		x[i] = roundBF16(v)
	}
}

// packFast packs a full panel (all w rows or columns present) with the
// AVX copy loops and reports whether it did: it declines when the CPU
// lacks AVX2 or the panel is empty. transposed selects the strided form
// dst[p·w+r] = src[r·ld+p]; otherwise dst[p·w+j] = src[p·ld+j].
// The caller has checked that src holds every element read.
func packFast(dst, src []float32, transposed bool, ld, w, kc int) bool {
	if !hasAVX2 || kc == 0 || w == 0 {
		return false
	}
	_ = dst[kc*w-1]
	if transposed {
		_ = src[(w-1)*ld+kc-1]
		kc8 := kc &^ 7
		if w < 8 || kc8 == 0 {
			packTransposedAVX(&dst[0], &src[0], ld, w, kc, w)
			return true
		}
		// Blocks of eight rows; a last partial block overlaps the one
		// before it, rewriting a few rows with the same values.
		for r0 := 0; r0 < w; r0 += 8 {
			r0 = min(r0, w-8)
			packTransposed8AVX(&dst[r0], &src[r0*ld], ld, kc8, w)
		}
		if kc8 < kc {
			for r := 0; r < w; r++ {
				for p := kc8; p < kc; p++ {
					dst[p*w+r] = src[r*ld+p]
				}
			}
		}
	} else {
		_ = src[(kc-1)*ld+w-1]
		if hasAVX512 && w <= 32 {
			packCopyAVX512(&dst[0], &src[0], ld, w, kc)
		} else {
			packCopyAVX(&dst[0], &src[0], ld, w, kc)
		}
	}
	return true
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// cpuVendor returns the CPUID vendor string, e.g. "AuthenticAMD" or
// "GenuineIntel".
func cpuVendor() string {
	_, b, c, d := cpuid(0, 0)
	var v [12]byte
	for i, r := range [3]uint32{b, d, c} {
		for j := 0; j < 4; j++ {
			v[4*i+j] = byte(r >> (8 * j))
		}
	}
	return string(v[:])
}

//go:noescape
func pairBF16AVX512(dst, src *float32, n int)

// pairsFast sets dst[s] = pairWord(ToBF16(src[2s]), ToBF16(src[2s+1]))
// for the ceil(len(src)/2) words (a last odd value pairs with 0) with
// AVX-512 and reports whether it did: it declines where the CPU lacks
// AVX-512.
func pairsFast(dst, src []float32) bool {
	if !hasAVX512 {
		return false
	}
	dst = dst[:(len(src)+1)/2]
	n := len(src) &^ 15
	if n > 0 {
		pairBF16AVX512(&dst[0], &src[0], n)
	}
	for s := n / 2; 2*s < len(src); s++ {
		hi := uint16(0)
		if 2*s+1 < len(src) {
			hi = ToBF16(src[2*s+1])
		}
		dst[s] = pairWord(ToBF16(src[2*s]), hi)
	}
	return true
}

//go:noescape
func interleaveRowsAVX512(dst *float32, stride int, lo, hi *float32, groups int)

// interleaveFast writes, for g < len(lo)/16, the 32 words of step row
// dst[g·stride…] pairing the bf16 values of lo[16g…16g+16] (low halves)
// with those of hi (high halves): word 2t+e = half e of lo[16g+t] |
// half e of hi[16g+t] << 16. It reports false where the CPU lacks
// AVX-512 (then nothing is written). len(lo) is a multiple of 16 and
// len(hi) = len(lo).
func interleaveFast(dst []float32, stride int, lo, hi []float32) bool {
	groups := len(lo) / 16
	if !hasAVX512 || groups == 0 {
		return false
	}
	_ = hi[16*groups-1]
	_ = dst[(groups-1)*stride+31]
	interleaveRowsAVX512(&dst[0], 4*stride, &lo[0], &hi[0], groups)
	return true
}

// l2Bytes returns the size of one core's L2 cache from CPUID leaf
// 0x80000006 (ECX bits 31–16, KiB; Intel and AMD both report it there),
// or 0 where that leaf is missing.
func l2Bytes() int {
	if max, _, _, _ := cpuid(0x80000000, 0); max < 0x80000006 {
		return 0
	}
	_, _, c, _ := cpuid(0x80000006, 0)
	return int(c>>16) << 10
}
