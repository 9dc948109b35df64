package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// packedCases are gemmCases with A not transposed and B unpadded: W is
// op(B)ᵀ [n, k] for MulNT (transB) and op(B) [k, n] for MulNN.
func packedCases() []gemmCase {
	var cs []gemmCase
	for _, tc := range gemmCases() {
		if tc.transA {
			continue
		}
		tc.padB = 0
		cs = append(cs, tc)
	}
	return cs
}

// mulPacked runs the fixture's product with p: MulNT when tc.transB.
func mulPacked(p *PackedMatrix, cfg Config, f *gemmFixture, c []float32) {
	tc := f.tc
	if tc.transB {
		p.MulNT(cfg, tc.m, tc.alpha, f.a, f.lda, tc.beta, c, f.ldc)
	} else {
		p.MulNN(cfg, tc.m, tc.alpha, f.a, f.lda, tc.beta, c, f.ldc)
	}
}

// wShape is W's shape for the fixture: [n, k] for MulNT, [k, n] for MulNN.
func wShape(tc gemmCase) (rows, cols int) {
	if tc.transB {
		return tc.n, tc.k
	}
	return tc.k, tc.n
}

// TestPackedMatrix checks MulNT and MulNN against the float64 reference
// for every kernel, thread count and kernel the matrix was packed for
// (the others run the unpacked fallback), and that they are bit-identical
// to Sgemm with the same kernel where Sgemm uses the same KC blocks.
func TestPackedMatrix(t *testing.T) {
	for i, tc := range packedCases() {
		f := newGemmFixture(tc, uint64(i))
		rows, cols := wShape(tc)
		for _, packK := range AvailableKernels() {
			p := Config{Kernel: packK, Threads: 2}.PackMatrix(f.b, rows, cols)
			for _, kern := range AvailableKernels() {
				for _, threads := range []int{1, 2, 3} {
					cfg := Config{Kernel: kern, Threads: threads}
					what := fmt.Sprintf("packed for %v, run %v/threads=%d", packK, kern, threads)
					c := append([]float32(nil), f.c0...)
					mulPacked(p, cfg, f, c)
					f.check(t, what, c)
					if kc := kern.impl().kc; blockK(kern.impl(), tc.n, tc.k) != kc {
						continue // Sgemm sums k in one block, the packed product in KC blocks
					}
					want := append([]float32(nil), f.c0...)
					cfg.Sgemm(false, tc.transB, tc.m, tc.n, tc.k, tc.alpha, f.a, f.lda, f.b, f.ldb, tc.beta, want, f.ldc)
					for j := range c {
						if math.Float32bits(c[j]) != math.Float32bits(want[j]) {
							t.Fatalf("%s %+v: C[%d] = %v, Sgemm gives %v", what, tc, j, c[j], want[j])
						}
					}
				}
			}
		}
	}
}

// TestPackedMatrixBF16 checks the bf16 packed products on both paths
// against the float64 reference on the rounded operands, and bit for bit
// against SgemmBF16's mode for the same kernel.
func TestPackedMatrixBF16(t *testing.T) {
	t.Logf("vendor %q, VDPBF16PS kernel %v, full rate (auto picks it): %v, AMX: %v", cpuVendor(), bf16Kernel != nil, bf16FullRate(), amxKernelIfUsable() != nil)
	for i, tc := range packedCases() {
		f := newGemmFixture(tc, uint64(i))
		rows, cols := wShape(tc)
		w := make([]uint16, len(f.b))
		ToBF16Slice(w, f.b)
		FromBF16Slice(f.b, w)
		a := f.a
		f.a = make([]float32, len(a))
		for j, v := range a {
			f.a[j] = roundBF16(v)
		}
		f.want, f.absSum = gemm64(false, tc.transB, tc.m, tc.n, tc.k, tc.alpha, f.a, f.lda, f.b, f.ldb, tc.beta, f.c0, f.ldc)
		for _, path := range []BF16Path{BF16Widen, BF16DotPairs, BF16Auto, BF16AMX} {
			for _, kern := range AvailableKernels() {
				for _, threads := range []int{1, 2} {
					cfg := Config{Kernel: kern, Threads: threads}.Resolve()
					p := packMatrixBF16(cfg, path, w, rows, cols)
					what := fmt.Sprintf("path %d %v/threads=%d", path, kern, threads)
					c := append([]float32(nil), f.c0...)
					if tc.transB {
						p.MulNT(cfg, tc.m, tc.alpha, a, f.lda, tc.beta, c, f.ldc)
					} else {
						p.MulNN(cfg, tc.m, tc.alpha, a, f.lda, tc.beta, c, f.ldc)
					}
					f.check(t, what, c)
					want := append([]float32(nil), f.c0...)
					if bk := bf16KernelFor(cfg, path); bk != nil {
						sgemmBF16With(bk, 2, threads, false, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, f.lda, w, f.ldb, tc.beta, want, f.ldc)
					} else {
						sgemmBF16With(kern.impl(), 1, threads, false, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, f.lda, w, f.ldb, tc.beta, want, f.ldc)
					}
					for j := range c {
						if math.Float32bits(c[j]) != math.Float32bits(want[j]) {
							t.Fatalf("%s %+v: C[%d] = %v, sgemmBF16With gives %v", what, tc, j, c[j], want[j])
						}
					}
					// The same matrix run with another kernel falls back.
					if kern != KernelGeneric {
						other := Config{Kernel: KernelGeneric, Threads: threads}
						c2 := append([]float32(nil), f.c0...)
						if tc.transB {
							p.MulNT(other, tc.m, tc.alpha, a, f.lda, tc.beta, c2, f.ldc)
						} else {
							p.MulNN(other, tc.m, tc.alpha, a, f.lda, tc.beta, c2, f.ldc)
						}
						f.check(t, what+" run generic", c2)
					}
				}
			}
		}
	}
}

// TestPackedMatrixRow checks Row and the rebuilt source against W.
func TestPackedMatrixRow(t *testing.T) {
	for _, shape := range [][2]int{{1, 1}, {3, 70}, {65, 33}, {100, 7}} {
		rows, cols := shape[0], shape[1]
		f := newGemmFixture(gemmCase{m: rows, n: cols, k: 1}, 7)
		w := f.c0[:rows*cols]
		h := make([]uint16, len(w))
		ToBF16Slice(h, w)
		for _, kern := range AvailableKernels() {
			cfg := Config{Kernel: kern}
			mats := map[string]*PackedMatrix{"fp32": cfg.PackMatrix(w, rows, cols)}
			for _, path := range []BF16Path{BF16Widen, BF16DotPairs, BF16AMX} {
				mats[fmt.Sprintf("bf16 path %d", path)] = packMatrixBF16(cfg, path, h, rows, cols)
			}
			for name, p := range mats {
				dst := make([]float32, cols)
				for i := 0; i < rows; i++ {
					p.Row(dst, i)
					for j, v := range dst {
						want := w[i*cols+j]
						if p.BF16() {
							want = FromBF16(h[i*cols+j])
						}
						if math.Float32bits(v) != math.Float32bits(want) {
							t.Fatalf("%v %s %d×%d: Row(%d)[%d] = %v, want %v", kern, name, rows, cols, i, j, v, want)
						}
					}
				}
				s32, s16 := p.source()
				for j := range w {
					if p.BF16() && s16[j] != h[j] || !p.BF16() && s32[j] != w[j] {
						t.Fatalf("%v %s: source()[%d] differs from W", kern, name, j)
					}
				}
			}
		}
	}
}

func TestPackedMatrixPanics(t *testing.T) {
	p := Config{}.PackMatrix(make([]float32, 12), 3, 4)
	for name, f := range map[string]func(){
		"short a":     func() { p.MulNT(Config{}, 2, 1, make([]float32, 7), 4, 0, make([]float32, 6), 3) },
		"short c":     func() { p.MulNN(Config{}, 2, 1, make([]float32, 6), 3, 0, make([]float32, 7), 4) },
		"small lda":   func() { p.MulNT(Config{}, 2, 1, make([]float32, 8), 3, 0, make([]float32, 6), 3) },
		"short w":     func() { Config{}.PackMatrix(make([]float32, 11), 3, 4) },
		"row too big": func() { p.Row(make([]float32, 4), 3) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// bf16Specials are float32 bit patterns whose rounding to bf16 is easy to
// get wrong: ties, NaNs, infinities, denormals, the largest finite value.
var bf16Specials = []uint32{0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0x80000000, 0x7f800000, 0x7f7fffff,
	0xff800000, 0x00000001, 0x00008000, 0x00018000, 0x807fffff, 0x7f800001, 0xffc00001, 0x7fffffff}

// TestPairsFast checks the AVX-512 pairing against pairWord(ToBF16(…))
// on every 65537th bit pattern and the special values, at every length
// of a tail.
func TestPairsFast(t *testing.T) {
	var xs []float32
	for b := uint64(0); b < 1<<32; b += 65537 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	for _, u := range bf16Specials {
		xs = append(xs, math.Float32frombits(u))
	}
	for off := 0; off < 33; off++ {
		src := xs[off:]
		dst := make([]float32, (len(src)+1)/2)
		if !pairsFast(dst, src) {
			t.Skip("no fast pairing on this CPU")
		}
		for s, w := range dst {
			hi := uint16(0)
			if 2*s+1 < len(src) {
				hi = ToBF16(src[2*s+1])
			}
			if want := pairWord(ToBF16(src[2*s]), hi); math.Float32bits(w) != math.Float32bits(want) {
				t.Fatalf("off %d: word %d = %#08x, want %#08x", off, s, math.Float32bits(w), math.Float32bits(want))
			}
		}
	}
}

// TestPackAPairs checks packAPairs (its fast path for full untransposed
// panels included) bit for bit against its definition, for odd shapes and
// offsets and data with special values.
func TestPackAPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][4]int{{14, 1, 14, 0}, {28, 511, 14, 3}, {30, 512, 14, 0}, {43, 257, 14, 5}, {13, 40, 14, 0}, {12, 33, 6, 2}, {336, 512, 14, 1}} {
		mc, kc, mr, p0 := sh[0], sh[1], sh[2], sh[3]
		for _, transA := range []bool{false, true} {
			i0, lda := 2, kc+p0+3
			rowsA := i0 + mc
			if transA {
				lda = i0 + mc + 1
				rowsA = p0 + kc
			}
			a := randSlice(r, rowsA*lda)
			for i := range a {
				if r.IntN(50) == 0 {
					a[i] = math.Float32frombits(bf16Specials[r.IntN(len(bf16Specials))])
				}
			}
			steps := (kc + 1) / 2
			panels := (mc + mr - 1) / mr
			dst := randSlice(r, panels*mr*steps)
			packAPairs(dst, transA, a, lda, i0, p0, mc, kc, mr)
			at := func(i, p int) uint16 {
				if i >= mc || p >= kc {
					return 0
				}
				if transA {
					return ToBF16(a[(p0+p)*lda+i0+i])
				}
				return ToBF16(a[(i0+i)*lda+p0+p])
			}
			for q := 0; q < panels; q++ {
				for s := 0; s < steps; s++ {
					for rr := 0; rr < mr; rr++ {
						i := q*mr + rr
						want := pairWord(at(i, 2*s), at(i, 2*s+1))
						if got := dst[q*mr*steps+s*mr+rr]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("mc=%d kc=%d mr=%d p0=%d transA=%v: panel %d step %d row %d = %#08x, want %#08x",
								mc, kc, mr, p0, transA, q, s, rr, math.Float32bits(got), math.Float32bits(want))
						}
					}
				}
			}
		}
	}
}

// TestPackBPairs checks packBPairs (its word-transpose path for even
// blocks included) bit for bit against its definition.
func TestPackBPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sh := range [][4]int{{32, 2, 32, 0}, {64, 512, 32, 2}, {70, 511, 32, 4}, {33, 40, 32, 1}, {16, 66, 16, 0}, {5, 9, 4, 3}} {
		nc, kc, nr, p0 := sh[0], sh[1], sh[2], sh[3]
		for _, transB := range []bool{false, true} {
			for _, pad := range []int{0, 1, 2} {
				j0, ldb := 1, j0Pad(nc, pad)
				rowsB := p0 + kc
				if transB {
					ldb = p0 + kc + pad
					rowsB = j0 + nc
				}
				b := make([]uint16, rowsB*ldb)
				for i := range b {
					b[i] = uint16(r.Uint32())
				}
				steps := (kc + 1) / 2
				dst := randSlice(r, (nc+nr-1)/nr*nr*steps)
				packBPairs(dst, transB, b, ldb, p0, j0, kc, nc, nr)
				at := func(p, j int) uint16 {
					if p >= kc || j >= nc {
						return 0
					}
					if transB {
						return b[(j0+j)*ldb+p0+p]
					}
					return b[(p0+p)*ldb+j0+j]
				}
				for q := 0; q < (nc+nr-1)/nr; q++ {
					for s := 0; s < steps; s++ {
						for jj := 0; jj < nr; jj++ {
							want := pairWord(at(2*s, q*nr+jj), at(2*s+1, q*nr+jj))
							if got := dst[q*nr*steps+s*nr+jj]; math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("nc=%d kc=%d nr=%d p0=%d transB=%v ldb=%d: panel %d step %d col %d = %#08x, want %#08x",
									nc, kc, nr, p0, transB, ldb, q, s, jj, math.Float32bits(got), math.Float32bits(want))
							}
						}
					}
				}
			}
		}
	}
}

func j0Pad(nc, pad int) int { return 1 + nc + pad }

// BenchmarkPacked compares the packed products with Sgemm and SgemmBF16 on
// the smollm2-135m projection shapes (batch 8 × 256 rows) on one thread:
// go test ./internal/tensor -run X -bench Packed.
func BenchmarkPacked(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const m = 2048
	cfg := Config{Threads: 1}.Resolve()
	for _, s := range []struct {
		name       string
		nt         bool
		rows, cols int // W
	}{{"NT_576x576", true, 576, 576}, {"NT_1536x576", true, 1536, 576}, {"NN_1536x576", false, 1536, 576}, {"NN_576x1536", false, 576, 1536}} {
		w := randSlice(r, s.rows*s.cols)
		h := make([]uint16, len(w))
		ToBF16Slice(h, w)
		n, k := s.cols, s.rows
		if s.nt {
			n, k = s.rows, s.cols
		}
		a := randSlice(r, m*k)
		c := make([]float32, m*n)
		pf, ph := cfg.PackMatrix(w, s.rows, s.cols), cfg.PackMatrixBF16(h, s.rows, s.cols)
		for _, v := range []struct {
			name string
			f    func()
		}{
			{"sgemm", func() { cfg.Sgemm(false, s.nt, m, n, k, 1, a, k, w, s.cols, 0, c, n) }},
			{"packed", func() {
				if s.nt {
					pf.MulNT(cfg, m, 1, a, k, 0, c, n)
				} else {
					pf.MulNN(cfg, m, 1, a, k, 0, c, n)
				}
			}},
			{"sgemmbf16", func() { cfg.SgemmBF16(false, s.nt, m, n, k, 1, a, k, h, s.cols, 0, c, n) }},
			{"packedbf16", func() {
				if s.nt {
					ph.MulNT(cfg, m, 1, a, k, 0, c, n)
				} else {
					ph.MulNN(cfg, m, 1, a, k, 0, c, n)
				}
			}},
		} {
			b.Run(s.name+"/"+v.name, func(b *testing.B) {
				for b.Loop() {
					v.f()
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestInterleaveFast checks the AVX-512 row interleave against its
// definition.
func TestInterleaveFast(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, groups := range []int{1, 2, 5} {
		lo, hi := randSlice(r, 16*groups), randSlice(r, 16*groups)
		const stride = 40
		dst := randSlice(r, (groups-1)*stride+32)
		want := append([]float32(nil), dst...)
		for g := 0; g < groups; g++ {
			for i := 0; i < 16; i++ {
				l, h := math.Float32bits(lo[16*g+i]), math.Float32bits(hi[16*g+i])
				want[g*stride+2*i] = math.Float32frombits(l&0xffff | h<<16)
				want[g*stride+2*i+1] = math.Float32frombits(l>>16 | h&0xffff0000)
			}
		}
		if !interleaveFast(dst, stride, lo, hi) {
			t.Skip("no fast interleave on this CPU")
		}
		for i := range dst {
			if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
				t.Fatalf("groups %d: word %d = %#08x, want %#08x", groups, i, math.Float32bits(dst[i]), math.Float32bits(want[i]))
			}
		}
	}
}

// TestPackedMulNN checks that MulNN, which packs its B blocks from the
// MulNT panels as it goes (packNN), gives Sgemm's bits and neither
// rebuilds W nor keeps anything beside the panels, for every kernel, with
// edge panels of W's rows and columns and several KC blocks (rows ≤ 256
// or > 576, where Sgemm keeps KC blocks too).
func TestPackedMulNN(t *testing.T) {
	for _, kern := range AvailableKernels() {
		for _, threads := range []int{1, 2} {
			cfg := Config{Kernel: kern, Threads: threads}
			for _, sh := range [][3]int{{5, 7, 9}, {33, 70, 65}, {100, 40, 129}, {40, 640, 96}, {20, 601, 70}, {3, 64, 64}} {
				m, rows, cols := sh[0], sh[1], sh[2]
				w := newGemmFixture(gemmCase{m: rows, n: cols, k: 1}, 11).c0[:rows*cols]
				a := newGemmFixture(gemmCase{m: m, n: rows, k: 1}, 12).c0[:m*rows]
				p := cfg.PackMatrix(w, rows, cols)
				got, want := make([]float32, m*cols), make([]float32, m*cols)
				for i := range got {
					got[i] = float32(i%7) - 3
					want[i] = got[i]
				}
				p.MulNN(cfg, m, 0.5, a, rows, 2, got, cols)
				cfg.Sgemm(false, false, m, cols, rows, 0.5, a, rows, w, cols, 2, want, cols)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v threads=%d %v: MulNN[%d] = %v, Sgemm %v", kern, threads, sh, i, got[i], want[i])
					}
				}
				if p.src32 != nil || p.Bytes() != 4*len(p.nt) {
					t.Fatalf("%v %v: MulNN kept %d bytes beside the panels", kern, sh, p.Bytes()-4*len(p.nt))
				}
			}
		}
	}
}
