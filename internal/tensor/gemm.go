// Package tensor holds the numeric kernels the runtime and the trainer
// run on: matrix products and the vector operations around them.
//
// The products are blocked as in GotoBLAS/BLIS: op(B) is packed into
// KC×NC blocks of NR-wide column panels, op(A) into MC×KC blocks of
// MR-tall row panels, and a micro-kernel in assembly (AVX-512 or AVX2)
// or portable Go multiplies one MR×NR tile of C at a time. Transposed
// operands are read in place by the packing routines.
package tensor

import (
	"fmt"
	"sync"
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C in float32 for row-major
// matrices, as BLAS does: op(X) is X or Xᵀ as transA and transB say;
// op(A) is m×k, op(B) is k×n and C is m×n; lda, ldb and ldc are the row
// strides of A, B and C as stored. When beta is 0, C is not read.
//
// Sgemm runs with Default(). Every element of C is summed in an order
// fixed by the kernel alone, so results are bit-identical from run to run
// and for any thread count. Sgemm panics, naming the argument, when a
// dimension is negative, a stride is too small or a slice too short: it
// never reads or writes outside the slices it is given.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Default().Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm is the package-level Sgemm run with configuration cfg.
func (cfg Config) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("Sgemm", transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	cfg = cfg.Resolve()
	sgemmWith(cfg.Kernel.impl(), cfg.Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmWith runs a checked, non-trivial Sgemm with kernel kern on up to
// threads goroutines.
func sgemmWith(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	kcb := blockK(kern, n, k) // from the whole n, so that every thread count sums alike
	parallelGemm(threads, kern.mr, kern.nr, m, n, k, func(i0, i1, j0, j1 int) {
		ao, bo := i0*lda, j0
		if transA {
			ao = i0
		}
		if transB {
			bo = j0 * ldb
		}
		as, bs := a[ao:], b[bo:]
		pl := gemmPlan{
			kern: kern, kunit: 1,
			packA: func(dst []float32, i0, p0, mc, kc int) {
				packA(kern.fastPack, dst, transA, as, lda, i0, p0, mc, kc, kern.mr)
			},
			packB: func(dst []float32, p0, j0, kc, nc int) {
				packB(kern.fastPack, dst, transB, bs, ldb, p0, j0, kc, nc, kern.nr)
			},
		}
		if inPlaceA(kern, transA, lda) {
			pl.aRows, pl.aLd = as, lda
		}
		if transA && kern.microPackA != nil {
			pl.aCols, pl.aLd = as, lda
		}
		if !transB && kern.microPackB != nil {
			pl.bRows, pl.bLd = bs, ldb
		}
		pl.kcb = kcb
		gemmSerial(pl, i1-i0, j1-j0, k, alpha, beta, c[i0*ldc+j0:], ldc)
	})
}

// checkGemm panics with a message naming the bad argument of a GEMM call.
// The assembly kernels have no bounds checks, so this is what keeps them
// inside their slices.
func checkGemm(fn string, transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("tensor.%s: negative dimension m=%d n=%d k=%d", fn, m, n, k))
	}
	// rows×cols as stored.
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need := func(name string, rows, cols, ld, have int) {
		if ld < max(cols, 1) {
			panic(fmt.Sprintf("tensor.%s: ld%s=%d is less than the %d columns of %s", fn, name, ld, cols, name))
		}
		if rows > 0 && cols > 0 {
			if rows-1 > (1<<62)/ld {
				panic(fmt.Sprintf("tensor.%s: %s of %d rows with stride %d overflows", fn, name, rows, ld))
			}
			if n := (rows-1)*ld + cols; have < n {
				panic(fmt.Sprintf("tensor.%s: len(%s)=%d, want at least %d for %d×%d with ld%s=%d", fn, name, have, n, rows, cols, name, ld))
			}
		}
	}
	need("a", ar, ac, lda, la)
	need("b", br, bc, ldb, lb)
	need("c", m, n, ldc, lc)
}

// scaleMatrix sets the m×n matrix C to beta·C, or to zero when beta is 0.
func scaleMatrix(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// minWorkPerThread is the number of multiply-adds below which another
// goroutine costs more than it saves.
const minWorkPerThread = 1 << 20

// parallelGemm splits an m×n output into at most threads rectangles,
// cutting the longer side at multiples of its tile size (mr rows or nr
// columns) so that the tile grid, and with it every element's summation
// order, is the same as for one thread. It calls f(i0, i1, j0, j1) for
// each rectangle concurrently and returns when all are done.
func parallelGemm(threads, mr, nr, m, n, k int, f func(i0, i1, j0, j1 int)) {
	work := m * n * k
	if threads > 1 && work/threads < minWorkPerThread {
		threads = max(1, work/minWorkPerThread)
	}
	splitM := m >= n
	tiles := (n + nr - 1) / nr
	if splitM {
		tiles = (m + mr - 1) / mr
	}
	threads = min(threads, tiles)
	if threads <= 1 {
		f(0, m, 0, n)
		return
	}
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		lo, hi := t*tiles/threads, (t+1)*tiles/threads
		i0, i1, j0, j1 := 0, m, 0, n
		if splitM {
			i0, i1 = lo*mr, min(hi*mr, m)
		} else {
			j0, j1 = lo*nr, min(hi*nr, n)
		}
		if t == threads-1 {
			f(i0, i1, j0, j1)
			continue
		}
		wg.Go(func() { f(i0, i1, j0, j1) })
	}
	wg.Wait()
}

// gemmKernel is one micro-kernel with its blocking. micro computes the
// mr×nr tile c (row stride ldc) as alpha·(Ap·Bp) + beta·c, not reading c
// when beta is 0, where Ap is kc steps of mr floats and Bp kc steps of nr
// floats (the packed layouts below).
type gemmKernel struct {
	name       string
	mr, nr     int  // register tile
	kc, mc, nc int  // cache blocks; mc is a multiple of mr, nc of nr
	fastPack   bool // pack full panels with packFast (assembly) where it can
	amx        bool // AMX tiles (gemmSerialAMX) instead of micro
	micro      func(kc int, a, b, c []float32, ldc int, alpha, beta float32)
	// microRows, where the kernel has it, is micro reading op(A) = A in
	// place: row r of the micro-panel is a[r·lda : r·lda+kc] (a starts at
	// its first value), so that A need not be packed.
	microRows func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32)
	// microPackB and microRowsPackB, where the kernel has them, are micro
	// and microRows reading op(B) = B in place (step p at bsrc[p·ldb:],
	// nr values) and storing each step into the packed micro-panel b as
	// they go: the first row of tiles of a block packs B this way.
	microPackB     func(kc int, a, b, c []float32, ldc int, bsrc []float32, ldb int, alpha, beta float32)
	microRowsPackB func(kc int, a []float32, lda int, b, c []float32, ldc int, bsrc []float32, ldb int, alpha, beta float32)
	// microPackA, where the kernel has it, is micro reading op(A) = Aᵀ in
	// place (step p at asrc[p·lda:], mr values) and storing each step into
	// the packed micro-panel a: the first tile of each row of tiles packs
	// A this way.
	microPackA func(kc int, a, b, c []float32, ldc int, asrc []float32, lda int, alpha, beta float32)
}

// gemmBuf holds one goroutine's packing buffers.
type gemmBuf struct {
	a, b, tile []float32
	amxB       []float32 // gemmSerialAMX: zero-padded B k tails
}

var gemmBufs sync.Pool

func getBuf(k *gemmKernel) *gemmBuf {
	buf, _ := gemmBufs.Get().(*gemmBuf)
	if buf == nil {
		buf = new(gemmBuf)
	}
	if n := k.mc * k.kc; len(buf.a) < n {
		buf.a = make([]float32, n)
	}
	if n := k.kc * k.nc; len(buf.b) < n {
		buf.b = make([]float32, n)
	}
	if n := k.mr * k.nr; len(buf.tile) < n {
		buf.tile = make([]float32, n)
	}
	return buf
}

// gemmPlan is what gemmSerial needs to run one product: the kernel and
// its blocking, and the packing of the two operands. A packed step holds
// kunit values of k (2 for bf16 pairs); packA fills the panels of the
// mc×kc block of op(A) at (i0, p0), packB those of the kc×nc block of
// op(B) at (p0, j0), in the layouts the micro-kernel reads.
//
// When bPacked is set, op(B) is already packed as whole-k panels (a
// PackedMatrix layout): panel q, columns q·nr…, holds all bSteps steps of
// nr values, so the block at k offset p0 is the contiguous slice from step
// p0/kunit, and packB is not called.
type gemmPlan struct {
	kern    *gemmKernel
	kunit   int
	packA   func(dst []float32, i0, p0, mc, kc int)
	packB   func(dst []float32, p0, j0, kc, nc int)
	bPacked []float32
	bSteps  int
	// aRows, when set, is op(A) = A (row stride aLd), which whole micro-
	// panels read in place with kern.microRows; packA then packs only the
	// panel at the edge of m.
	aRows []float32
	aLd   int
	// aCols, when set, is op(A) = Aᵀ (A's row stride aLd), whose full
	// micro-panels the first tile of each row of tiles packs as it
	// multiplies them (kern.microPackA); packA then packs only the panel
	// at the edge of m.
	aCols []float32
	// bRows, when set, is op(B) = B (row stride bLd), whose full-width
	// micro-panels the first row of tiles of each block packs as it
	// multiplies them (kern.microPackB); packB then packs only the panel
	// at the edge of n.
	bRows []float32
	bLd   int
	// kcb, when set, is the KC block gemmSerial sums over instead of
	// kern.kc: blockK's choice for the whole product (Sgemm's fp32
	// products), never for one thread's share of it.
	kcb int
}

// inPlaceA reports whether kern reads an untransposed A with row stride
// lda in place. Not when lda·4 bytes is a multiple of 4 KiB: the 14 rows
// of a micro-panel would then fall in one set of the L1 cache (8- to
// 12-way) and evict each other.
func inPlaceA(kern *gemmKernel, transA bool, lda int) bool {
	return !transA && kern.microRows != nil && lda*4%4096 != 0
}

// gemmSerial runs C = alpha·op(A)·op(B) + beta·C (m×n, sum over k) on one
// goroutine with the GotoBLAS loop nest: NC columns of B, then KC of the
// sum (packing op(B) into a block sized for L2), then MC rows of A
// (packing op(A)), then the register tiles, rows outer: the kernels
// broadcast A and load B as vectors, so the small A micro-panel is the
// one kept in L1. Each element of C is thus the sum over KC blocks, in
// order, of micro-kernel dot products that each run over k in order.
func gemmSerial(pl gemmPlan, m, n, k int, alpha, beta float32, c []float32, ldc int) {
	kern := pl.kern
	if kern.amx {
		gemmSerialAMX(pl, m, n, k, alpha, beta, c, ldc)
		return
	}
	buf := getBuf(kern)
	defer gemmBufs.Put(buf)
	kcb := kern.kc
	if pl.kcb > 0 {
		kcb = pl.kcb
		if need := kern.mc * kcb; len(buf.a) < need {
			buf.a = make([]float32, need)
		}
		if need := kcb * ((min(n, kern.nc) + kern.nr - 1) / kern.nr * kern.nr); len(buf.b) < need {
			buf.b = make([]float32, need)
		}
	}
	for jc := 0; jc < n; jc += kern.nc {
		nc := min(kern.nc, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			steps := (kc + pl.kunit - 1) / pl.kunit
			bp := buf.b
			switch {
			case pl.bPacked != nil:
				bp = pl.bPacked[jc*pl.bSteps+pc/pl.kunit*kern.nr:]
			case pl.bRows != nil: // gemmBlock packs the full panels
				if q := nc / kern.nr * kern.nr; q < nc {
					pl.packB(buf.b[q*steps:], pc, jc+q, kc, nc-q)
				}
			default:
				pl.packB(buf.b, pc, jc, kc, nc)
			}
			bStride := steps * kern.nr // between B micro-panels
			if pl.bPacked != nil {
				bStride = pl.bSteps * kern.nr
			}
			gemmBlock(pl, buf, 0, m, jc, nc, pc, kc, bp, bStride, alpha, beta, c, ldc)
		}
	}
}

// l2Block is the share of one core's L2 cache a packed B block may take
// (the A panels and C tiles use the rest); 0 where the size is unknown.
var l2Block = l2Bytes() * 7 / 10

// blockK returns the KC block gemmSerial sums an fp32 product of n
// columns over k in: kern.kc, or all of k at once when k is at most
// 2.25·kc and that B block (k × min(n, NC) floats) still fits l2Block.
// One block instead of three (k = 576: 256, 256 and 64) reads and writes
// each C tile once instead of three times; on the Sapphire Rapids Xeon it
// took 2048×576×576 NT from 0.77 to 0.86–0.89 of peak and the k/v
// projections' 2048×192×576 from 0.71–0.73 to 0.77–0.84. Only Sgemm
// uses it (gemmPlan.kcb), where the block is packed into L2 just
// before use: PackedMatrix products, whose B streams from the whole-k
// panels in memory, measured slower with it (LoRA step 8.8–9.1 against
// 8.2–8.6 CPU-s). It depends on the shape and the CPU alone, never on the
// thread count.
func blockK(kern *gemmKernel, n, k int) int {
	if k > kern.kc && 4*k <= 9*kern.kc && 4*k*min(n, kern.nc) <= l2Block {
		return k
	}
	return kern.kc
}

// gemmBlock multiplies rows i0…i1 of op(A) at k block pc (kc values)
// by the packed B block of columns jc… (nc of them; micro-panel q at
// bp[q·bStride:]) into C, MC rows at a time (packing op(A) into buf.a),
// then the register tiles, rows outer: the kernels broadcast A and load B
// as vectors, so the A micro-panel (mr×kc) stays in L1 while the B
// micro-panels stream from the L2-resident B block.
//
// Packing in flight: with pl.bRows, the block's full B micro-panels are
// not packed yet, and the first row of tiles packs them as it reads them
// (microPackB); with pl.aCols, the first tile of each row of tiles packs
// its A micro-panel the same way (microPackA). The pack's loads and
// stores then ride along with the multiply-adds of a tile instead of
// running before them: on the Zen 5 EPYC of session 4 the weight-gradient
// (TN) products gained 3–6 % of the FMA peak in A/B runs (576×576×2048
// 0.755 → 0.814), and no product measured slower, small ones included
// (bench/RESULTS.md). The packed panels, and so the results, are
// the same bits either way (TestSgemmPackedInFlight).
func gemmBlock(pl gemmPlan, buf *gemmBuf, i0, i1, jc, nc, pc, kc int, bp []float32, bStride int, alpha, beta float32, c []float32, ldc int) {
	kern := pl.kern
	mr, nr := kern.mr, kern.nr
	steps := (kc + pl.kunit - 1) / pl.kunit
	tile := buf.tile[:mr*nr]
	betaBlock := beta
	if pc > 0 {
		betaBlock = 1
	}
	for ic := i0; ic < i1; ic += kern.mc {
		mc := min(kern.mc, i1-ic)
		switch {
		case pl.aCols != nil: // the tiles pack the full panels
			if q := mc / mr * mr; q < mc {
				pl.packA(buf.a[q*steps:], ic+q, pc, mc-q, kc)
			}
		case pl.aRows == nil:
			pl.packA(buf.a, ic, pc, mc, kc)
		}
		for ir := 0; ir < mc; ir += mr {
			mrr := min(mr, mc-ir)
			var ap, aRows, aSrc []float32
			if pl.aCols != nil && mrr == mr {
				if pl.bRows != nil && ic == i0 && ir == 0 {
					// The first tile packs B: pack this A panel before it.
					pl.packA(buf.a[ir*steps:], ic+ir, pc, mr, kc)
				} else {
					o := pc*pl.aLd + ic + ir
					aSrc = pl.aCols[o : o+(kc-1)*pl.aLd+mr]
				}
			}
			switch {
			case pl.aRows == nil:
				ap = buf.a[ir*steps : (ir+mr)*steps]
			case mrr == mr:
				o := (ic+ir)*pl.aLd + pc
				aRows = pl.aRows[o : o+(mr-1)*pl.aLd+kc]
			default: // the last, partial panel
				pl.packA(buf.a, ic+ir, pc, mrr, kc)
				ap = buf.a[:mr*steps]
			}
			for jr := 0; jr < nc; jr += nr {
				nrr := min(nr, nc-jr)
				b := bp[jr/nr*bStride : jr/nr*bStride+steps*nr]
				ci := (ic+ir)*ldc + jc + jr
				// A whole tile goes straight to C; an edge tile to scratch.
				ct, ld, al, be := tile, nr, float32(1), float32(0)
				whole := mrr == mr && nrr == nr
				if whole {
					ct, ld, al, be = c[ci:ci+(mr-1)*ldc+nr], ldc, alpha, betaBlock
				}
				switch {
				case aSrc != nil && jr == 0: // this tile packs the A micro-panel
					kern.microPackA(steps, ap, b, ct, ld, aSrc, pl.aLd, al, be)
				case pl.bRows != nil && ic == i0 && ir == 0 && nrr == nr: // this tile packs the B micro-panel
					o := pc*pl.bLd + jc + jr
					bsrc := pl.bRows[o : o+(kc-1)*pl.bLd+nr]
					if aRows != nil {
						kern.microRowsPackB(steps, aRows, pl.aLd, b, ct, ld, bsrc, pl.bLd, al, be)
					} else {
						kern.microPackB(steps, ap, b, ct, ld, bsrc, pl.bLd, al, be)
					}
				case aRows != nil:
					kern.microRows(steps, aRows, pl.aLd, b, ct, ld, al, be)
				default:
					kern.micro(steps, ap, b, ct, ld, al, be)
				}
				if !whole {
					storeTile(c[ci:], ldc, tile, nr, mrr, nrr, alpha, betaBlock)
				}
			}
		}
	}
}

// storeTile sets the mrr×nrr corner of C (row stride ldc) to
// alpha·T + beta·C, T being a tile of row stride nr computed into scratch
// (at the edges of C, where a kernel cannot write whole tiles); C is not
// read when beta is 0.
func storeTile(c []float32, ldc int, tile []float32, nr, mrr, nrr int, alpha, beta float32) {
	for r := 0; r < mrr; r++ {
		crow := c[r*ldc : r*ldc+nrr]
		trow := tile[r*nr : r*nr+nrr]
		if beta == 0 {
			for j, t := range trow {
				crow[j] = alpha * t
			}
			continue
		}
		for j, t := range trow {
			crow[j] = alpha*t + beta*crow[j]
		}
	}
}

// packA copies the mc×kc block of op(A) at (i0, p0) into dst as
// ceil(mc/mr) panels; panel q holds rows q·mr… as kc steps of mr floats
// (dst[q·mr·kc + p·mr + r] = op(A)[i0+q·mr+r][p0+p]), zero past row mc.
// With fast, full panels go through packFast; the Go loops are the
// reference it is tested against.
func packA(fast bool, dst []float32, transA bool, a []float32, lda, i0, p0, mc, kc, mr int) {
	for q := 0; q < mc; q += mr {
		rows := min(mr, mc-q)
		panel := dst[q*kc : (q+mr)*kc]
		if rows == mr && fast {
			var done bool
			if transA {
				done = packFast(panel, a[p0*lda+i0+q:], false, lda, mr, kc)
			} else {
				done = packFast(panel, a[(i0+q)*lda+p0:], true, lda, mr, kc)
			}
			if done {
				continue
			}
		}
		if transA {
			// op(A)[i][p] = a[p·lda+i]: each step is a contiguous run.
			for p := 0; p < kc; p++ {
				src := a[(p0+p)*lda+i0+q:]
				step := panel[p*mr : p*mr+mr]
				copy(step, src[:rows])
				clear(step[rows:])
			}
			continue
		}
		for r := 0; r < rows; r++ {
			src := a[(i0+q+r)*lda+p0 : (i0+q+r)*lda+p0+kc]
			for p, v := range src {
				panel[p*mr+r] = v
			}
		}
		for r := rows; r < mr; r++ {
			for p := 0; p < kc; p++ {
				panel[p*mr+r] = 0
			}
		}
	}
}

// packB copies the kc×nc block of op(B) at (p0, j0) into dst as
// ceil(nc/nr) panels; panel q holds columns q·nr… as kc steps of nr floats
// (dst[q·nr·kc + p·nr + j] = op(B)[p0+p][j0+q·nr+j]), zero past column nc.
func packB(fast bool, dst []float32, transB bool, b []float32, ldb, p0, j0, kc, nc, nr int) {
	for q := 0; q < nc; q += nr {
		cols := min(nr, nc-q)
		panel := dst[q*kc : (q+nr)*kc]
		if cols == nr && fast {
			var done bool
			if transB {
				done = packFast(panel, b[(j0+q)*ldb+p0:], true, ldb, nr, kc)
			} else {
				done = packFast(panel, b[p0*ldb+j0+q:], false, ldb, nr, kc)
			}
			if done {
				continue
			}
		}
		if !transB {
			for p := 0; p < kc; p++ {
				src := b[(p0+p)*ldb+j0+q:]
				step := panel[p*nr : p*nr+nr]
				copy(step, src[:cols])
				clear(step[cols:])
			}
			continue
		}
		// op(B)[p][j] = b[j·ldb+p]: read rows of B, scatter with stride nr.
		for j := 0; j < cols; j++ {
			src := b[(j0+q+j)*ldb+p0 : (j0+q+j)*ldb+p0+kc]
			for p, v := range src {
				panel[p*nr+j] = v
			}
		}
		for j := cols; j < nr; j++ {
			for p := 0; p < kc; p++ {
				panel[p*nr+j] = 0
			}
		}
	}
}

// sgemmRef is the obviously-correct version every fast path is checked against.
func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}
