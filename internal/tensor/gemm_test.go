package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemm64 is the float64 reference: C = alpha·op(A)·op(B) + beta·C.
func gemm64(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, absSum []float64) {
	want = make([]float64, m*n)
	absSum = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, as float64
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
				s += float64(av) * float64(bv)
				as += math.Abs(float64(av) * float64(bv))
			}
			w := float64(alpha) * s
			as = math.Abs(float64(alpha)) * as
			if beta != 0 {
				w += float64(beta) * float64(c[i*ldc+j])
				as += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j] = w
			absSum[i*n+j] = as
		}
	}
	return want, absSum
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra stride beyond the stored width
	padC           int
}

func gemmCases() []gemmCase {
	var cs []gemmCase
	shapes := [][3]int{
		{1, 1, 1}, {1, 7, 1}, {7, 1, 1}, {1, 1, 300}, {1, 100, 33}, {100, 1, 33},
		{3, 5, 7}, {13, 31, 17}, {14, 32, 1}, {14, 32, 256}, {15, 33, 257}, {28, 64, 513},
		{29, 65, 100}, {6, 16, 40}, {37, 50, 600}, {130, 70, 90}, {300, 290, 270}, {64, 4200, 20},
		{350, 20, 30}, {64, 96, 1100},
	}
	ab := [][2]float32{{1, 0}, {1, 1}, {0.5, -2}, {-1.5, 0.25}}
	for i, s := range shapes {
		for t := 0; t < 4; t++ {
			x := ab[(i+t)%len(ab)]
			cs = append(cs, gemmCase{transA: t&1 != 0, transB: t&2 != 0, m: s[0], n: s[1], k: s[2],
				alpha: x[0], beta: x[1], padA: (i * 3) % 5, padB: (i * 7) % 4, padC: i % 3})
		}
	}
	return cs
}

// gemmFixture is one case's operands and float64 reference, built once and
// checked against every kernel and thread count.
type gemmFixture struct {
	tc            gemmCase
	a, b, c0      []float32
	lda, ldb, ldc int
	want, absSum  []float64
}

func newGemmFixture(tc gemmCase, seed uint64) *gemmFixture {
	r := rand.New(rand.NewPCG(seed, 1))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	f := &gemmFixture{tc: tc, lda: ac + tc.padA, ldb: bc + tc.padB, ldc: tc.n + tc.padC}
	f.a = randSlice(r, (ar-1)*f.lda+ac)
	f.b = randSlice(r, (br-1)*f.ldb+bc)
	f.c0 = randSlice(r, tc.m*f.ldc)
	f.want, f.absSum = gemm64(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, f.a, f.lda, f.b, f.ldb, tc.beta, f.c0, f.ldc)
	return f
}

// check compares c (the result) with the reference, with the error bound
// of a float32 sum of k products (about k·eps·Σ|terms|), and checks that
// the stride padding past column n is untouched.
func (f *gemmFixture) check(t *testing.T, what string, c []float32) {
	t.Helper()
	tc := f.tc
	eps := float64(math.Nextafter32(1, 2) - 1)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < f.ldc; j++ {
			got := c[i*f.ldc+j]
			if j >= tc.n {
				if math.Float32bits(got) != math.Float32bits(f.c0[i*f.ldc+j]) {
					t.Fatalf("%s %+v: C[%d][%d] past n was written: %v, was %v", what, tc, i, j, got, f.c0[i*f.ldc+j])
				}
				continue
			}
			w := f.want[i*tc.n+j]
			tol := float64(tc.k+2)*eps*f.absSum[i*tc.n+j] + 1e-30
			if d := math.Abs(float64(got) - w); !(d <= tol) {
				t.Fatalf("%s %+v: C[%d][%d] = %v, want %v (|diff| %.3g > tol %.3g)", what, tc, i, j, got, w, d, tol)
			}
		}
	}
}

func TestSgemmKernels(t *testing.T) {
	for i, tc := range gemmCases() {
		f := newGemmFixture(tc, uint64(i))
		for _, kern := range AvailableKernels() {
			for _, threads := range []int{1, 2, 3} {
				c := append([]float32(nil), f.c0...)
				Config{Kernel: kern, Threads: threads}.Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, f.a, f.lda, f.b, f.ldb, tc.beta, c, f.ldc)
				f.check(t, fmt.Sprintf("%v/threads=%d", kern, threads), c)
			}
		}
	}
}

func TestSgemmRefMatchesFloat64(t *testing.T) {
	for i, tc := range gemmCases()[:20] {
		runGemmCaseRef(t, tc, uint64(i))
	}
}

func runGemmCaseRef(t *testing.T, tc gemmCase, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	a := randSlice(r, ar*ac)
	b := randSlice(r, br*bc)
	c := randSlice(r, tc.m*tc.n)
	want, absSum := gemm64(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, ac, b, bc, tc.beta, c, tc.n)
	sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, ac, b, bc, tc.beta, c, tc.n)
	eps := float64(math.Nextafter32(1, 2) - 1)
	for i, w := range want {
		if d := math.Abs(float64(c[i]) - w); d > float64(tc.k+2)*eps*absSum[i]+1e-30 {
			t.Fatalf("%+v: ref C[%d] = %v, want %v", tc, i, c[i], w)
		}
	}
}

// TestSgemmDeterministic checks that results are bit-identical for every
// thread count, as the trainer's resume needs.
func TestSgemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, kern := range AvailableKernels() {
		for _, s := range [][3]int{{301, 97, 530}, {50, 700, 300}, {29, 33, 1000}, {1100, 1040, 40}} {
			m, n, k := s[0], s[1], s[2]
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			c0 := randSlice(r, m*n)
			var first []float32
			for threads := 1; threads <= 5; threads++ {
				c := append([]float32(nil), c0...)
				Config{Kernel: kern, Threads: threads}.Sgemm(false, true, m, n, k, 0.75, a, k, b, k, 0.5, c, n)
				if first == nil {
					first = c
					continue
				}
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
						t.Fatalf("%v %v: threads=%d C[%d]=%v, threads=1 gave %v", kern, s, threads, i, c[i], first[i])
					}
				}
			}
		}
	}
}

func TestSgemmBadArgsPanic(t *testing.T) {
	a := make([]float32, 12)
	cases := []struct {
		name string
		f    func()
	}{
		{"short a", func() { Sgemm(false, false, 4, 3, 4, 1, a, 4, a, 3, 0, a, 3) }},
		{"small lda", func() { Sgemm(false, false, 2, 2, 3, 1, a, 2, a, 2, 0, a, 2) }},
		{"negative m", func() { Sgemm(false, false, -1, 2, 2, 1, a, 2, a, 2, 0, a, 2) }},
		{"short c", func() { Sgemm(false, false, 3, 3, 1, 1, a, 1, a, 3, 0, a[:8], 3) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.f()
		})
	}
}

func TestSgemmZeroK(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 2, c, 2)
	if c[0] != 2 || c[3] != 8 {
		t.Fatalf("k=0, beta=2: got %v, want C doubled", c)
	}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
	if c[0] != 0 || c[3] != 0 {
		t.Fatalf("k=0, beta=0: got %v, want zeros", c)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("GANTRY_KERNEL", "generic")
	t.Setenv("GANTRY_THREADS", "3")
	c, err := ConfigFromEnv()
	if err != nil || c.Kernel != KernelGeneric || c.Threads != 3 {
		t.Fatalf("got %+v, %v; want generic, 3 threads", c, err)
	}
	t.Setenv("GANTRY_KERNEL", "sse9")
	if _, err := ConfigFromEnv(); err == nil {
		t.Fatal("unknown kernel: no error")
	}
	t.Setenv("GANTRY_KERNEL", "")
	t.Setenv("GANTRY_THREADS", "-2")
	if _, err := ConfigFromEnv(); err == nil {
		t.Fatal("negative threads: no error")
	}
}

// TestSgemmRandomShapes draws shapes, strides, transposes, alpha, beta and
// thread counts at random (fixed seed) to reach block-edge combinations the
// table misses: m across MC, n across NC, k across KC.
func TestSgemmRandomShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	dim := func(max int) int {
		if r.IntN(4) == 0 {
			return 1 + r.IntN(3)
		}
		return 1 + r.IntN(max)
	}
	for i := 0; i < 40; i++ {
		tc := gemmCase{
			transA: r.IntN(2) == 0, transB: r.IntN(2) == 0,
			m: dim(400), n: dim(1100), k: dim(600),
			alpha: float32(r.NormFloat64()), beta: []float32{0, 1, float32(r.NormFloat64())}[r.IntN(3)],
			padA: r.IntN(3), padB: r.IntN(3), padC: r.IntN(3),
		}
		if tc.m*tc.n*tc.k > 30_000_000 {
			tc.n = 30_000_000 / (tc.m * tc.k)
			tc.n = max(tc.n, 1)
		}
		f := newGemmFixture(tc, uint64(100+i))
		for _, kern := range AvailableKernels() {
			threads := 1 + r.IntN(4)
			c := append([]float32(nil), f.c0...)
			Config{Kernel: kern, Threads: threads}.Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, f.a, f.lda, f.b, f.ldb, tc.beta, c, f.ldc)
			f.check(t, fmt.Sprintf("%v/threads=%d", kern, threads), c)
		}
	}
}

// TestSgemmAInPlace checks that reading A in place (gemmKernel.microRows)
// gives bit for bit what packing it does: the same A stored with a row
// stride of 1024 floats (4 KiB, which inPlaceA refuses, so it is packed)
// and with an odd stride (read in place), for every kernel, several thread
// counts, whole and partial panels and several KC and NC blocks.
func TestSgemmAInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, kern := range AvailableKernels() {
		for _, s := range [][3]int{{14, 32, 9}, {29, 70, 300}, {300, 290, 600}, {100, 1100, 40}} {
			m, n, k := s[0], s[1], s[2]
			const ldPacked, ldInPlace = 1024, 1031
			if kern.impl().microRows != nil && (inPlaceA(kern.impl(), false, ldPacked) || !inPlaceA(kern.impl(), false, ldInPlace)) {
				t.Fatal("inPlaceA: want 1024 refused and 1031 accepted")
			}
			a1, a2 := make([]float32, m*ldPacked), make([]float32, m*ldInPlace)
			for i := 0; i < m; i++ {
				row := randSlice(r, k)
				copy(a1[i*ldPacked:], row)
				copy(a2[i*ldInPlace:], row)
			}
			b := randSlice(r, n*k)
			c0 := randSlice(r, m*n)
			for _, threads := range []int{1, 2, 3} {
				cfg := Config{Kernel: kern, Threads: threads}
				got := append([]float32(nil), c0...)
				cfg.Sgemm(false, true, m, n, k, 0.5, a2, ldInPlace, b, k, 1.5, got, n)
				want := append([]float32(nil), c0...)
				cfg.Sgemm(false, true, m, n, k, 0.5, a1, ldPacked, b, k, 1.5, want, n)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v %v threads=%d: C[%d] = %v in place, %v packed", kern, s, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestSgemmPackedInFlight checks that packing B in the first row of tiles
// and A in the first tile of each row (gemmKernel.microPackB,
// microPackA) gives bit for bit what packing the blocks before them does:
// the same products run with the kernel and with a copy of it without
// those, for A read in place and packed (transposed, and a 4 KiB row
// stride), B with and without an edge panel, whole and partial A panels,
// one and several KC and MC blocks, beta 0 and not, 1–3 threads.
func TestSgemmPackedInFlight(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, kern := range AvailableKernels() {
		impl := kern.impl()
		if impl.microPackB == nil && impl.microPackA == nil {
			continue
		}
		plain := *impl
		plain.microPackB, plain.microRowsPackB, plain.microPackA = nil, nil, nil
		for _, s := range [][3]int{{14, 32, 9}, {5, 40, 17}, {29, 70, 300}, {300, 290, 600}, {100, 1100, 40}, {576, 64, 2048}, {700, 20, 300}} {
			m, n, k := s[0], s[1], s[2]
			for _, transA := range []bool{false, true} {
				for _, lda := range []int{k + 3, 1024} {
					if transA {
						lda = m + 3
					} else if lda < k {
						continue
					}
					ar := m
					if transA {
						ar = k
					}
					a := randSlice(r, ar*lda)
					ldb := n + 5
					b := randSlice(r, k*ldb)
					c0 := randSlice(r, m*n)
					for _, beta := range []float32{0, 1.5} {
						for _, threads := range []int{1, 2, 3} {
							got := append([]float32(nil), c0...)
							sgemmWith(impl, threads, transA, false, m, n, k, 0.5, a, lda, b, ldb, beta, got, n)
							want := append([]float32(nil), c0...)
							sgemmWith(&plain, threads, transA, false, m, n, k, 0.5, a, lda, b, ldb, beta, want, n)
							for i := range got {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
									t.Fatalf("%v %v transA=%v lda=%d beta=%v threads=%d: C[%d] = %v packed in flight, %v packed first",
										kern, s, transA, lda, beta, threads, i, got[i], want[i])
								}
							}
						}
					}
				}
			}
		}
	}
}
