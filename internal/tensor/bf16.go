package tensor

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"unsafe"
)

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
	widenBF16(dst[:len(src)], src)
}

// roundBF16 returns x rounded to the nearest bfloat16, as a float32.
func roundBF16(x float32) float32 { return FromBF16(ToBF16(x)) }

// SgemmBF16 computes C = alpha·op(A)·op(B) + beta·C like Sgemm, with the
// weight operand B stored as bfloat16 (ldb counts uint16 elements). A is
// rounded to bfloat16 as it is packed; every product of two bf16 values
// is exact in float32, and the sums are accumulated in float32.
//
// Three kernels do this, chosen once per process by CPU (see BF16Path):
// AMX tiles (amxKernel, TDPBF16PS: 16 k pairs of a 16×16 block per
// instruction) where the CPU has AMX-BF16 and the OS grants it — Intel
// Sapphire Rapids and later: 780–890 against 180–190 GFLOP/s per core for
// fp32; the VDPBF16PS kernel (bf16Kernel, two k values per instruction on
// bf16 pairs) where it runs at full rate — AMD Zen 4/5: 2× the fp32 FMA
// rate, measured 221–225 against 113 GFLOP/s per core; and otherwise the
// fp32 kernel on widened values (Intel Xeons run VDPBF16PS at half the FMA
// rate). They round their sums differently (TDPBF16PS and VDPBF16PS sum
// each pair before accumulating), so results differ between paths in the
// last bits. It
// runs with Default(), is deterministic for any thread count, and panics
// on bad arguments as Sgemm does.
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	Default().SgemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmBF16 is the package-level SgemmBF16 run with configuration cfg.
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
	if kern := bf16KernelFor(cfg, bf16Choice()); kern != nil {
		sgemmBF16With(kern, 2, cfg.Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmBF16With(cfg.Kernel.impl(), 1, cfg.Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// BF16Path selects how bf16 products (SgemmBF16, PackMatrixBF16) run.
type BF16Path int

// The paths. GANTRY_BF16 sets one for the process: auto, amx, vdpbf16ps
// or widen.
const (
	// BF16Auto: AMX tiles where the CPU has AMX-BF16 and the OS grants
	// them (Intel Sapphire Rapids and later), else VDPBF16PS on AMD CPUs
	// that have AVX512_BF16 (Zen 4 and later run it at twice the fp32 FMA
	// rate), else the widened fp32 path (Intel runs VDPBF16PS at half rate).
	BF16Auto BF16Path = iota
	// BF16DotPairs: the VDPBF16PS kernel wherever the CPU has AVX512_BF16
	// and the configured kernel is avx512; the widened path elsewhere.
	BF16DotPairs
	// BF16Widen: always the fp32 kernel on widened values.
	BF16Widen
	// BF16AMX: AMX tiles where they run, else as BF16Auto.
	BF16AMX
)

// ParseBF16Path parses auto (or ""), amx, vdpbf16ps or widen.
func ParseBF16Path(s string) (BF16Path, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return BF16Auto, nil
	case "vdpbf16ps", "dpbf16", "pairs":
		return BF16DotPairs, nil
	case "widen", "fp32":
		return BF16Widen, nil
	case "amx":
		return BF16AMX, nil
	}
	return 0, fmt.Errorf("unknown bf16 path %q (want auto, amx, vdpbf16ps or widen): %w", s, ErrKernel)
}

// BF16Kernel names the kernel bf16 products (SgemmBF16, PackMatrixBF16)
// run on with cfg: "amx", "vdpbf16ps", or "widen" (the fp32 kernel on
// widened weights).
func (cfg Config) BF16Kernel() string {
	switch k := bf16KernelFor(cfg.Resolve(), bf16Choice()); {
	case k == nil:
		return "widen"
	case k.amx:
		return "amx"
	}
	return "vdpbf16ps"
}

// bf16Choice is GANTRY_BF16, read once; an invalid value logs a warning
// and means auto.
var bf16Choice = sync.OnceValue(func() BF16Path {
	p, err := ParseBF16Path(os.Getenv("GANTRY_BF16"))
	if err != nil {
		slog.Warn("tensor: ignoring invalid GANTRY_BF16", "err", err)
		return BF16Auto
	}
	return p
})

// bf16FullRate reports whether this CPU runs VDPBF16PS at full rate: AMD
// (every AMD CPU with AVX512_BF16 is Zen 4 or later). Decided by CPUID,
// not by timing, so that a process's results do not depend on load.
var bf16FullRate = sync.OnceValue(func() bool { return bf16Kernel != nil && cpuVendor() == "AuthenticAMD" })

// bf16KernelFor returns the bf16 kernel path chooses for the resolved cfg
// (AMX tiles or VDPBF16PS), or nil for the widened fp32 path with cfg's
// kernel. Both bf16 kernels need cfg's kernel to be avx512.
func bf16KernelFor(cfg Config, path BF16Path) *gemmKernel {
	if cfg.Kernel != KernelAVX512 || path == BF16Widen {
		return nil
	}
	if path == BF16Auto || path == BF16AMX {
		if k := amxKernelIfUsable(); k != nil {
			return k
		}
	}
	if bf16Kernel == nil || path != BF16DotPairs && !bf16FullRate() {
		return nil
	}
	return bf16Kernel
}

// sgemmBF16With runs a checked, non-trivial SgemmBF16 on up to threads
// goroutines with kernel kern: kunit 1 for an fp32 kernel on widened B
// (A rounded to bf16 as it is packed), 2 for bf16Kernel on bf16 pairs
// (VDPBF16PS; see SgemmBF16 for which is chosen).
func sgemmBF16With(kern *gemmKernel, kunit, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	parallelGemm(threads, kern.mr, kern.nr, m, n, k, func(i0, i1, j0, j1 int) {
		ao, bo := i0*lda, j0
		if transA {
			ao = i0
		}
		if transB {
			bo = j0 * ldb
		}
		as, bs := a[ao:], b[bo:]
		pl := gemmPlan{kern: kern, kunit: kunit}
		if kunit == 1 {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) {
				packA(kern.fastPack, dst, transA, as, lda, i0, p0, mc, kc, kern.mr)
				panels := (mc + kern.mr - 1) / kern.mr
				roundBF16Slice(dst[:panels*kern.mr*kc])
			}
			pl.packB = func(dst []float32, p0, j0, kc, nc int) { packBWidened(dst, transB, bs, ldb, p0, j0, kc, nc, kern.nr) }
		} else {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) { packAPairs(dst, transA, as, lda, i0, p0, mc, kc, kern.mr) }
			if kern.amx {
				pl.packA = func(dst []float32, i0, p0, mc, kc int) { packAAMX(dst, transA, as, lda, i0, p0, mc, kc) }
			}
			pl.packB = func(dst []float32, p0, j0, kc, nc int) { packBPairs(dst, transB, bs, ldb, p0, j0, kc, nc, kern.nr) }
		}
		gemmSerial(pl, i1-i0, j1-j0, k, alpha, beta, c[i0*ldc+j0:], ldc)
	})
}

// packBWidened is packB for the fp32 kernels on a bf16 op(B): panel q
// holds kc steps of nr floats, dst[q·nr·kc + p·nr + j] = op(B)[p0+p][j0+q·nr+j]
// widened, zero past column nc.
//
// Full transposed panels are widened row by row into a scratch block and
// then transposed by packFast, which is much faster than scattering one
// value at a time.
func packBWidened(dst []float32, transB bool, b []uint16, ldb, p0, j0, kc, nc, nr int) {
	var tmp [32 * 256]float32
	for q := 0; q < nc; q += nr {
		cols := min(nr, nc-q)
		panel := dst[q*kc : (q+nr)*kc]
		if transB && cols == nr && nr*kc <= len(tmp) {
			for j := 0; j < nr; j++ {
				FromBF16Slice(tmp[j*kc:j*kc+kc], b[(j0+q+j)*ldb+p0:(j0+q+j)*ldb+p0+kc])
			}
			if packFast(panel, tmp[:nr*kc], true, kc, nr, kc) {
				continue
			}
		}
		clear(panel)
		if transB {
			for j := 0; j < cols; j++ {
				src := b[(j0+q+j)*ldb+p0 : (j0+q+j)*ldb+p0+kc]
				for p, h := range src {
					panel[p*nr+j] = FromBF16(h)
				}
			}
			continue
		}
		for p := 0; p < kc; p++ {
			src := b[(p0+p)*ldb+j0+q : (p0+p)*ldb+j0+q+cols]
			FromBF16Slice(panel[p*nr:p*nr+cols], src)
		}
	}
}

// pairWord packs two bf16 values, lo for the even k and hi for the odd
// one, into the 32-bit word VDPBF16PS reads, carried in a float32.
func pairWord(lo, hi uint16) float32 { return math.Float32frombits(uint32(hi)<<16 | uint32(lo)) }

// packAPairs packs the mc×kc block of op(A) at (i0, p0) for the VDPBF16PS
// kernel: panel q holds ceil(kc/2) steps of mr words, word r of step s
// pairing bf16(op(A)[i0+q·mr+r][p0+2s]) and the next k value (0 past kc
// or past row mc).
//
// Full untransposed panels are paired row by row into a scratch block by
// pairsFast and then transposed by packFast, as packBWidened does.
func packAPairs(dst []float32, transA bool, a []float32, lda, i0, p0, mc, kc, mr int) {
	steps := (kc + 1) / 2
	var tmp [32 * 256]float32
	for q := 0; q < mc; q += mr {
		rows := min(mr, mc-q)
		panel := dst[q*steps : (q+mr)*steps]
		if !transA && rows == mr && mr*steps <= len(tmp) {
			ok := true
			for r := 0; r < mr && ok; r++ {
				ok = pairsFast(tmp[r*steps:(r+1)*steps], a[(i0+q+r)*lda+p0:(i0+q+r)*lda+p0+kc])
			}
			if ok && packFast(panel, tmp[:mr*steps], true, steps, mr, steps) {
				continue
			}
		}
		clear(panel)
		if transA {
			// op(A)[i][p] = a[p·lda+i]: rows p and p+1 of A are contiguous in i.
			for s := 0; s < steps; s++ {
				lo := a[(p0+2*s)*lda+i0+q : (p0+2*s)*lda+i0+q+rows]
				step := panel[s*mr : s*mr+rows]
				if 2*s+1 < kc {
					hi := a[(p0+2*s+1)*lda+i0+q : (p0+2*s+1)*lda+i0+q+rows]
					for r := range step {
						step[r] = pairWord(ToBF16(lo[r]), ToBF16(hi[r]))
					}
				} else {
					for r := range step {
						step[r] = pairWord(ToBF16(lo[r]), 0)
					}
				}
			}
			continue
		}
		for r := 0; r < rows; r++ {
			src := a[(i0+q+r)*lda+p0 : (i0+q+r)*lda+p0+kc]
			for s := 0; 2*s+1 < kc; s++ {
				panel[s*mr+r] = pairWord(ToBF16(src[2*s]), ToBF16(src[2*s+1]))
			}
			if kc%2 == 1 {
				panel[(steps-1)*mr+r] = pairWord(ToBF16(src[kc-1]), 0)
			}
		}
	}
}

// packBPairs packs the kc×nc block of op(B) at (p0, j0) for the VDPBF16PS
// kernel: panel q holds ceil(kc/2) steps of nr words, word j of step s
// pairing op(B)[p0+2s][j0+q·nr+j] and op(B)[p0+2s+1][…] (0 past kc or nc).
//
// Transposed, an even kc from an even p0 with an even ldb is a transpose
// of 32-bit words (each pair is one aligned word of a row of B), which
// full panels run through packFast.
func packBPairs(dst []float32, transB bool, b []uint16, ldb, p0, j0, kc, nc, nr int) {
	steps := (kc + 1) / 2
	var words []float32
	if transB && kc%2 == 0 && p0%2 == 0 && ldb%2 == 0 && len(b) >= 2 {
		words = unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/2)
	}
	for q := 0; q < nc; q += nr {
		cols := min(nr, nc-q)
		panel := dst[q*steps : (q+nr)*steps]
		if words != nil && cols == nr {
			if packFast(panel, words[((j0+q)*ldb+p0)/2:], true, ldb/2, nr, steps) {
				continue
			}
		}
		clear(panel)
		if transB {
			// op(B)[p][j] = b[j·ldb+p]: each pair is adjacent in memory.
			for j := 0; j < cols; j++ {
				src := b[(j0+q+j)*ldb+p0 : (j0+q+j)*ldb+p0+kc]
				for s := 0; 2*s+1 < kc; s++ {
					panel[s*nr+j] = pairWord(src[2*s], src[2*s+1])
				}
				if kc%2 == 1 {
					panel[(steps-1)*nr+j] = pairWord(src[kc-1], 0)
				}
			}
			continue
		}
		for s := 0; s < steps; s++ {
			lo := b[(p0+2*s)*ldb+j0+q : (p0+2*s)*ldb+j0+q+cols]
			step := panel[s*nr : s*nr+cols]
			if 2*s+1 < kc {
				hi := b[(p0+2*s+1)*ldb+j0+q : (p0+2*s+1)*ldb+j0+q+cols]
				for j := range step {
					step[j] = pairWord(lo[j], hi[j])
				}
			} else {
				for j := range step {
					step[j] = pairWord(lo[j], 0)
				}
			}
		}
	}
}
