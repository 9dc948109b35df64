package tensor

import "math"

// ToBF16 rounds x to bfloat16 (the top 16 bits of a float32) to nearest,
// ties to even. NaNs stay NaNs (quietened); infinities and signed zeros
// are kept; values beyond the bf16 range round to infinity.
func ToBF16(x float32) uint16 {
	u := math.Float32bits(x)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep the sign, force a quiet mantissa bit
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// FromBF16 widens a bfloat16 to the float32 with the same value.
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// ToBF16Slice rounds src into dst element by element; it panics if dst is
// shorter than src.
func ToBF16Slice(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = ToBF16(x)
	}
}

// FromBF16Slice widens src into dst; it panics if dst is shorter than src.
func FromBF16Slice(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = FromBF16(h)
	}
}

// roundBF16 returns x rounded to the nearest bfloat16, as a float32.
func roundBF16(x float32) float32 { return FromBF16(ToBF16(x)) }

// SgemmBF16 computes C = alpha·op(A)·op(B) + beta·C like Sgemm, with the
// weight operand B stored as bfloat16 (ldb counts uint16 elements). A is
// rounded to bfloat16 as it is packed; every product of two bf16 values
// is exact in float32, and the sums are accumulated in float32. On CPUs
// with AVX512_BF16 the products run on VDPBF16PS (two k values per
// instruction lane); elsewhere the fp32 kernel runs on the widened values.
// It runs with Default(), is deterministic for any thread count, and
// panics on bad arguments as Sgemm does.
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	Default().SgemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmBF16 is the package-level SgemmBF16 run with configuration cfg.
// The VDPBF16PS kernel is used when cfg's kernel is AVX-512 and the CPU
// has AVX512_BF16.
func (cfg Config) SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("SgemmBF16", transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	cfg = cfg.Resolve()
	kern, kunit := cfg.Kernel.impl(), 1
	if cfg.Kernel == KernelAVX512 && bf16Kernel != nil {
		kern, kunit = bf16Kernel, 2
	}
	parallelGemm(cfg.Threads, kern.mr, kern.nr, m, n, k, func(i0, i1, j0, j1 int) {
		ao, bo := i0*lda, j0
		if transA {
			ao = i0
		}
		if transB {
			bo = j0 * ldb
		}
		as, bs := a[ao:], b[bo:]
		opA := func(i, p int) float32 {
			if transA {
				return as[p*lda+i]
			}
			return as[i*lda+p]
		}
		opB := func(p, j int) uint16 {
			if transB {
				return bs[j*ldb+p]
			}
			return bs[p*ldb+j]
		}
		pl := gemmPlan{kern: kern, kunit: kunit}
		if kunit == 1 {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) { packAWidened(dst, opA, i0, p0, mc, kc, kern.mr) }
			pl.packB = func(dst []float32, p0, j0, kc, nc int) { packBWidened(dst, opB, p0, j0, kc, nc, kern.nr) }
		} else {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) { packAPairs(dst, opA, i0, p0, mc, kc, kern.mr) }
			pl.packB = func(dst []float32, p0, j0, kc, nc int) { packBPairs(dst, opB, p0, j0, kc, nc, kern.nr) }
		}
		gemmSerial(pl, i1-i0, j1-j0, k, alpha, beta, c[i0*ldc+j0:], ldc)
	})
}

// packAWidened is packA for the fp32 kernels on bf16-rounded values of
// op(A): dst[q·mr·kc + p·mr + r] = bf16(op(A)[i0+q·mr+r][p0+p]).
func packAWidened(dst []float32, opA func(i, p int) float32, i0, p0, mc, kc, mr int) {
	for q := 0; q < mc; q += mr {
		panel := dst[q*kc : (q+mr)*kc]
		for p := 0; p < kc; p++ {
			for r := 0; r < mr; r++ {
				var v float32
				if q+r < mc {
					v = roundBF16(opA(i0+q+r, p0+p))
				}
				panel[p*mr+r] = v
			}
		}
	}
}

// packBWidened is packB for the fp32 kernels on a bf16 op(B).
func packBWidened(dst []float32, opB func(p, j int) uint16, p0, j0, kc, nc, nr int) {
	for q := 0; q < nc; q += nr {
		panel := dst[q*kc : (q+nr)*kc]
		for p := 0; p < kc; p++ {
			for j := 0; j < nr; j++ {
				var v float32
				if q+j < nc {
					v = FromBF16(opB(p0+p, j0+q+j))
				}
				panel[p*nr+j] = v
			}
		}
	}
}

// packAPairs packs the mc×kc block of op(A) for the VDPBF16PS kernel:
// panel q holds ceil(kc/2) steps of mr 32-bit words, word r of step s
// holding bf16(op(A)[row][p0+2s]) in its low half and the next k value
// (0 past kc) in its high half. The words travel in a []float32.
func packAPairs(dst []float32, opA func(i, p int) float32, i0, p0, mc, kc, mr int) {
	steps := (kc + 1) / 2
	for q := 0; q < mc; q += mr {
		panel := dst[q*steps : (q+mr)*steps]
		for s := 0; s < steps; s++ {
			for r := 0; r < mr; r++ {
				var lo, hi uint16
				if q+r < mc {
					lo = ToBF16(opA(i0+q+r, p0+2*s))
					if 2*s+1 < kc {
						hi = ToBF16(opA(i0+q+r, p0+2*s+1))
					}
				}
				panel[s*mr+r] = math.Float32frombits(uint32(hi)<<16 | uint32(lo))
			}
		}
	}
}

// packBPairs packs the kc×nc block of op(B) for the VDPBF16PS kernel:
// panel q holds ceil(kc/2) steps of nr words, word j of step s holding
// op(B)[p0+2s][col] low and op(B)[p0+2s+1][col] high (0 past kc or nc).
func packBPairs(dst []float32, opB func(p, j int) uint16, p0, j0, kc, nc, nr int) {
	steps := (kc + 1) / 2
	for q := 0; q < nc; q += nr {
		panel := dst[q*steps : (q+nr)*steps]
		for s := 0; s < steps; s++ {
			for j := 0; j < nr; j++ {
				var lo, hi uint16
				if q+j < nc {
					lo = opB(p0+2*s, j0+q+j)
					if 2*s+1 < kc {
						hi = opB(p0+2*s+1, j0+q+j)
					}
				}
				panel[s*nr+j] = math.Float32frombits(uint32(hi)<<16 | uint32(lo))
			}
		}
	}
}
