package tensor

import (
	"fmt"
	"math"
	"sync"
)

// PackedMatrix is a frozen weight matrix W [rows, cols] (row-major, float32
// or bfloat16) packed once as the B operand of the two products a layer
// runs with it:
//
//	MulNT: C [m, rows] = alpha·A·Wᵀ + beta·C   A [m, cols]  (forward y = x·Wᵀ)
//	MulNN: C [m, cols] = alpha·A·W  + beta·C   A [m, rows]  (backward dx = dy·W)
//
// It keeps one layout, MulNT's whole-k panels: panel q holds nr columns of
// op(B) = Wᵀ (nr rows of W) for every step of k, so the KC block of any k
// offset is one contiguous slice and the layout does not depend on the
// cache blocking:
//
//	nt[q·nr·K + s·nr + j] = step s of op(B) = Wᵀ, column q·nr+j (row q·nr+j of W)
//
// where K = cols (a step is one value of k). Rows past the matrix are
// zero. A bf16 matrix for the VDPBF16PS kernel has steps of pairs of k
// values, ceil(cols/2) of them (the word packBPairs writes: the even k in
// the low half), so that it takes the memory of W in bf16 and no more.
//
// MulNN packs its B blocks from the same panels as it goes, as Sgemm packs
// op(B) = W: with nr = 32, 32 steps of one nt panel are a 32×32 block of
// W (4 KiB, contiguous), and a transpose (packFast) turns it into 32 steps
// of a W panel (packNN; bf16 then interleaves adjacent rows into pairs,
// packNNPairs). On the AMD EPYC of session 4 that measured within 1 % of
// MulNN on a second, W-ordered copy of the panels, which the matrix
// therefore does not keep: half the memory (0.42 GB of a LoRA step's
// 2.75 on smollm2-135m).
//
// The products run the same loop nest as Sgemm and SgemmBF16 with the same
// kernel, so their results are bit-identical to Sgemm(false, true, …) and
// Sgemm(false, false, …) on W (and to SgemmBF16's mode for the same
// kernel), for any thread count, except where Sgemm sums all of a short k
// in one block (blockK) and the packed product keeps KC blocks. A product asked of a kernel the matrix was
// not packed for (another Config.Kernel, or bf16 on a CPU where the widened
// fp32 path is chosen) runs the ordinary unpacked product on W, rebuilt
// once from the packed panels and kept. A PackedMatrix is safe for
// concurrent use.
type PackedMatrix struct {
	rows, cols int
	bf16       bool
	kern       *gemmKernel // the kernel nt is packed for; nil: none
	kunit      int         // k values per step: 1 (fp32) or 2 (bf16 pairs)
	path       BF16Path    // bf16: the path chosen when packed
	nt         []float32

	mu    sync.Mutex
	src32 []float32 // W as float32 (unpacked on demand for other kernels)
	src16 []uint16  // W as bf16 (the same, for bf16 matrices)
}

// PackMatrix packs the float32 matrix W [rows, cols] (row stride cols) for
// cfg's kernel. It does not keep w.
func (cfg Config) PackMatrix(w []float32, rows, cols int) *PackedMatrix {
	checkPackArgs("PackMatrix", len(w), rows, cols)
	cfg = cfg.Resolve()
	kern := cfg.Kernel.impl()
	p := &PackedMatrix{rows: rows, cols: cols, kern: kern, kunit: 1}
	p.nt = make([]float32, panelsLen(rows, kern.nr, cols))
	parallelPanels(cfg.Threads, rows, kern.nr, func(j0, j1 int) {
		packB(kern.fastPack, p.nt[j0*cols:], true, w, cols, 0, j0, cols, j1-j0, kern.nr)
	})
	return p
}

// PackMatrixBF16 packs the bfloat16 matrix W [rows, cols] (row stride cols)
// for the bf16 kernel cfg chooses (see SgemmBF16): as VDPBF16PS pairs, or,
// where the widened fp32 path is chosen, not at all (the products then run
// SgemmBF16 on w, which the matrix keeps). Otherwise it does not keep w.
func (cfg Config) PackMatrixBF16(w []uint16, rows, cols int) *PackedMatrix {
	checkPackArgs("PackMatrixBF16", len(w), rows, cols)
	return packMatrixBF16(cfg, bf16Choice(), w, rows, cols)
}

// packMatrixBF16 is PackMatrixBF16 on the given path.
func packMatrixBF16(cfg Config, path BF16Path, w []uint16, rows, cols int) *PackedMatrix {
	cfg = cfg.Resolve()
	p := &PackedMatrix{rows: rows, cols: cols, bf16: true, kunit: 2, path: path}
	kern := bf16KernelFor(cfg, path)
	if kern == nil {
		p.src16 = w[:rows*cols]
		return p
	}
	p.kern = kern
	p.nt = make([]float32, panelsLen(rows, kern.nr, (cols+1)/2))
	parallelPanels(cfg.Threads, rows, kern.nr, func(j0, j1 int) {
		packBPairs(p.nt[j0*((cols+1)/2):], true, w, cols, 0, j0, cols, j1-j0, kern.nr)
	})
	return p
}

func checkPackArgs(fn string, have, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		panic(fmt.Sprintf("tensor.%s: want a positive shape, got %d×%d", fn, rows, cols))
	}
	if have < rows*cols {
		panic(fmt.Sprintf("tensor.%s: len(w)=%d, want at least %d×%d", fn, have, rows, cols))
	}
}

// panelsLen is the length of ceil(n/nr) panels of steps·nr values.
func panelsLen(n, nr, steps int) int { return (n + nr - 1) / nr * nr * steps }

// parallelPanels calls f(j0, j1) for column ranges of n split at multiples
// of nr over up to threads goroutines; each range packs its own panels.
func parallelPanels(threads, n, nr int, f func(j0, j1 int)) {
	tiles := (n + nr - 1) / nr
	threads = max(1, min(threads, tiles))
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		j0, j1 := t*tiles/threads*nr, min((t+1)*tiles/threads*nr, n)
		wg.Go(func() { f(j0, j1) })
	}
	wg.Wait()
}

// Rows returns the number of rows of W.
func (p *PackedMatrix) Rows() int { return p.rows }

// Cols returns the number of columns of W.
func (p *PackedMatrix) Cols() int { return p.cols }

// BF16 reports whether W is stored as bfloat16.
func (p *PackedMatrix) BF16() bool { return p.bf16 }

// Bytes returns the memory the matrix holds.
func (p *PackedMatrix) Bytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return 4*(len(p.nt)+len(p.src32)) + 2*len(p.src16)
}

// at returns W[i][j] as packed: float32 bits, or the bf16 bits (in the
// low 16 bits) from the pairs of a bf16 matrix.
func (p *PackedMatrix) at(i, j int) uint32 {
	nr := p.kern.nr
	if p.kunit == 1 {
		return math.Float32bits(p.nt[(i/nr)*nr*p.cols+j*nr+i%nr])
	}
	w := math.Float32bits(p.nt[(i/nr)*nr*((p.cols+1)/2)+(j/2)*nr+i%nr])
	return w >> (16 * (j % 2)) & 0xffff
}

// Row copies row i of W into dst [cols], widened to float32.
func (p *PackedMatrix) Row(dst []float32, i int) {
	if i < 0 || i >= p.rows {
		panic(fmt.Sprintf("tensor.PackedMatrix.Row: row %d of %d", i, p.rows))
	}
	dst = dst[:p.cols]
	switch {
	case p.kern == nil:
		FromBF16Slice(dst, p.src16[i*p.cols:(i+1)*p.cols])
	case p.kunit == 1:
		nr := p.kern.nr
		panel := p.nt[(i/nr)*nr*p.cols:]
		for j := range dst {
			dst[j] = panel[j*nr+i%nr]
		}
	default:
		for j := range dst {
			dst[j] = FromBF16(uint16(p.at(i, j)))
		}
	}
}

// source returns W unpacked (float32 or bf16), rebuilding it from the
// panels the first time.
func (p *PackedMatrix) source() ([]float32, []uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.src32 != nil || p.src16 != nil {
		return p.src32, p.src16
	}
	if !p.bf16 {
		p.src32 = make([]float32, p.rows*p.cols)
		for i := 0; i < p.rows; i++ {
			p.Row(p.src32[i*p.cols:], i)
		}
		return p.src32, nil
	}
	p.src16 = make([]uint16, p.rows*p.cols)
	for i := 0; i < p.rows; i++ {
		for j := 0; j < p.cols; j++ {
			p.src16[i*p.cols+j] = uint16(p.at(i, j))
		}
	}
	return nil, p.src16
}

// MulNT computes C = alpha·A·Wᵀ + beta·C: A [m, cols] (row stride lda),
// C [m, rows] (ldc). When beta is 0, C is not read. For a bf16 W, A is
// rounded to bf16 as it is packed, as SgemmBF16 does.
func (p *PackedMatrix) MulNT(cfg Config, m int, alpha float32, a []float32, lda int, beta float32, c []float32, ldc int) {
	p.mul(cfg, "PackedMatrix.MulNT", true, m, alpha, a, lda, beta, c, ldc)
}

// MulNN computes C = alpha·A·W + beta·C: A [m, rows] (row stride lda),
// C [m, cols] (ldc). When beta is 0, C is not read.
func (p *PackedMatrix) MulNN(cfg Config, m int, alpha float32, a []float32, lda int, beta float32, c []float32, ldc int) {
	p.mul(cfg, "PackedMatrix.MulNN", false, m, alpha, a, lda, beta, c, ldc)
}

// mul runs MulNT (nt) or MulNN with the packed panels when cfg's kernel is
// the one they were packed for, else the unpacked product on W.
func (p *PackedMatrix) mul(cfg Config, fn string, nt bool, m int, alpha float32, a []float32, lda int, beta float32, c []float32, ldc int) {
	n, k := p.cols, p.rows // MulNN: op(B) = W [rows, cols]
	if nt {
		n, k = p.rows, p.cols
	}
	// B's checks are the packing's: pass a B that passes.
	checkGemm(fn, false, false, m, n, k, len(a), lda, k*n, n, len(c), ldc)
	if m == 0 {
		return
	}
	if alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	cfg = cfg.Resolve()
	kern := cfg.Kernel.impl()
	if p.bf16 {
		kern = bf16KernelFor(cfg, p.path)
	}
	if kern == nil || kern != p.kern {
		src32, src16 := p.source()
		ldb := p.cols
		if src16 != nil {
			if kern == nil { // the widened fp32 path
				sgemmBF16With(cfg.Kernel.impl(), 1, cfg.Threads, false, nt, m, n, k, alpha, a, lda, src16, ldb, beta, c, ldc)
				return
			}
			sgemmBF16With(kern, 2, cfg.Threads, false, nt, m, n, k, alpha, a, lda, src16, ldb, beta, c, ldc)
			return
		}
		sgemmWith(kern, cfg.Threads, false, nt, m, n, k, alpha, a, lda, src32, ldb, beta, c, ldc)
		return
	}
	var panels []float32 // MulNT's; MulNN packs B blocks from them
	if nt {
		panels = p.nt
	}
	steps := (k + p.kunit - 1) / p.kunit
	mr, nr := kern.mr, kern.nr
	parallelGemm(cfg.Threads, mr, nr, m, n, k, func(i0, i1, j0, j1 int) {
		as := a[i0*lda:]
		pl := gemmPlan{kern: kern, kunit: p.kunit}
		switch {
		case panels != nil:
			pl.bPacked, pl.bSteps = panels[j0*steps:], steps
		case p.kunit == 1:
			pl.packB = func(dst []float32, p0, jb, kc, nc int) { p.packNN(dst, p0, j0+jb, kc, nc) }
		default:
			pl.packB = func(dst []float32, p0, jb, kc, nc int) { p.packNNPairs(dst, p0, j0+jb, kc, nc) }
		}
		if p.kunit == 1 {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) {
				packA(kern.fastPack, dst, false, as, lda, i0, p0, mc, kc, mr)
			}
			if inPlaceA(kern, false, lda) {
				pl.aRows, pl.aLd = as, lda
			}
		} else if kern.amx {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) { packAAMX(dst, false, as, lda, i0, p0, mc, kc) }
		} else {
			pl.packA = func(dst []float32, i0, p0, mc, kc int) { packAPairs(dst, false, as, lda, i0, p0, mc, kc, mr) }
		}
		gemmSerial(pl, i1-i0, j1-j0, k, alpha, beta, c[i0*ldc+j0:], ldc)
	})
}

// packNN packs the kc×nc block at (p0, j0) of op(B) = W for MulNN of an
// fp32 matrix kept in the nt layout alone, as packB(dst, false, W, …)
// would: panel q holds kc steps of nr values, W[p0+s][j0+q·nr+j] (0 past
// nc). Each 32×32 block of W is one contiguous 4 KiB run of an nt panel
// (32 columns of 32 rows each), so the block is its transpose; p0 is a
// multiple of nr (a KC block start) and so is j0.
func (p *PackedMatrix) packNN(dst []float32, p0, j0, kc, nc int) {
	nr := p.kern.nr
	K := p.cols // steps of an nt panel
	for q := 0; q < nc; q += nr {
		cols := min(nr, nc-q)
		panel := dst[q*kc : (q+nr)*kc]
		for r0 := 0; r0 < kc; r0 += nr {
			rows := min(nr, kc-r0)
			// src[t·nr + i] = W[p0+r0+i][j0+q+t]: nt panel (p0+r0)/nr, steps j0+q….
			src := p.nt[(p0+r0)/nr*nr*K+(j0+q)*nr:]
			blk := panel[r0*nr : (r0+rows)*nr]
			if cols == nr && rows == nr && packFast(blk, src, true, nr, nr, nr) {
				continue
			}
			for i := 0; i < rows; i++ {
				step := blk[i*nr : (i+1)*nr]
				for t := 0; t < cols; t++ {
					step[t] = src[t*nr+i]
				}
				clear(step[cols:])
			}
		}
	}
}

// packNNPairs packs the kc×nc block at (p0, j0) of op(B) = W for MulNN of
// a bf16 matrix, as packBPairs(dst, false, W, …) would: panel q holds
// ceil(kc/2) steps of nr words, word j of step s pairing W[p0+2s][j0+q·nr+j]
// and W[p0+2s+1][…] (0 past kc or nc). It rebuilds each 32 rows of W (one
// nt panel; p0 is a multiple of nr) as row-major words by a transpose,
// then interleaves pairs of rows. j0 is even (a multiple of nr).
func (p *PackedMatrix) packNNPairs(dst []float32, p0, j0, kc, nc int) {
	const nr = 32 // bf16Kernel.nr: one nt panel is 32 rows of W
	var tmp [nr * 512]float32
	steps, sk := (kc+1)/2, (p.cols+1)/2
	wn := (nc + 1) / 2                 // words of a row of the block
	clear(dst[:(nc+nr-1)/nr*nr*steps]) // the zeros past kc and nc
	for r0 := 0; r0 < kc; r0 += nr {
		for c0 := 0; c0 < wn; c0 += 512 { // blocks of 1024 columns
			cw := min(512, wn-c0)
			// tmp[i·cw + t] = word j0/2+c0+t of row p0+r0+i of W.
			src := p.nt[(p0+r0)/nr*nr*sk+(j0/2+c0)*nr:]
			if !packFast(tmp[:nr*cw], src, true, nr, cw, nr) {
				for t := 0; t < cw; t++ {
					for i := 0; i < nr; i++ {
						tmp[i*cw+t] = src[t*nr+i]
					}
				}
			}
			rows := min(nr, kc-r0)
			for i := 0; i < rows; i += 2 {
				s := (r0 + i) / 2
				lo := tmp[i*cw : (i+1)*cw]
				hi := tmp[(i+1)*cw : (i+2)*cw] // zero lanes past W's rows, or the next row
				t0 := 0
				// Whole panels of 32 columns (16 words) with both rows.
				if g := min(cw/16, nc/nr-c0/16); i+1 < rows && g > 0 {
					if interleaveFast(dst[(c0/16)*nr*steps+s*nr:], nr*steps, lo[:16*g], hi[:16*g]) {
						t0 = 16 * g
					}
				}
				for t, lw := range lo[t0:] {
					t += t0
					l, h := math.Float32bits(lw), uint32(0)
					if i+1 < rows {
						h = math.Float32bits(hi[t])
					}
					j := 2 * (c0 + t)
					d := dst[(j/nr)*nr*steps+s*nr+j%nr:]
					d[0] = math.Float32frombits(l&0xffff | h<<16)
					if j+1 < nc {
						d[1] = math.Float32frombits(l>>16 | h&0xffff0000)
					}
				}
			}
		}
	}
}
