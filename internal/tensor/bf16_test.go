package tensor

import (
	"fmt"
	"math"
	"testing"
)

func TestToBF16(t *testing.T) {
	tests := []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // 1 + half an ulp: tie, to even (down)
		{0x3f818000, 0x3f82}, // tie, to even (up)
		{0x3f808001, 0x3f81}, // just above the tie
		{0x3f807fff, 0x3f80}, // just below
		{0x80000000, 0x8000}, // -0
		{0x7f800000, 0x7f80}, // +Inf
		{0x7f7fffff, 0x7f80}, // max float32 rounds to Inf
		{0xff800000, 0xff80}, // -Inf
		{0x00000001, 0x0000}, // smallest denormal rounds to 0
	}
	for _, tc := range tests {
		if got := ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("ToBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	nan := ToBF16(math.Float32frombits(0x7f800001))
	if f := FromBF16(nan); !math.IsNaN(float64(f)) {
		t.Errorf("NaN became %v (%#04x)", f, nan)
	}
	for _, h := range []uint16{0, 0x3f80, 0xc2f7, 0x0080, 0x7f7f} {
		if got := ToBF16(FromBF16(h)); got != h {
			t.Errorf("round trip %#04x → %#04x", h, got)
		}
	}
}

func TestSgemmBF16(t *testing.T) {
	t.Logf("VDPBF16PS kernel available: %v", bf16Kernel != nil)
	for i, tc := range gemmCases() {
		// B is made bf16 first and A rounded, so the float64 reference
		// multiplies exactly the values the kernels do; a second check
		// against the unrounded A bounds the effect of that rounding.
		f := newGemmFixture(tc, uint64(i))
		b := make([]uint16, len(f.b))
		ToBF16Slice(b, f.b)
		FromBF16Slice(f.b, b)
		a := f.a
		f.a = make([]float32, len(a))
		for j, v := range a {
			f.a[j] = roundBF16(v)
		}
		f.want, f.absSum = gemm64(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, f.a, f.lda, f.b, f.ldb, tc.beta, f.c0, f.ldc)
		wantF, _ := gemm64(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, f.lda, f.b, f.ldb, tc.beta, f.c0, f.ldc)
		for _, kern := range AvailableKernels() {
			for _, threads := range []int{1, 2} {
				c := append([]float32(nil), f.c0...)
				what := fmt.Sprintf("%v/threads=%d", kern, threads)
				Config{Kernel: kern, Threads: threads}.SgemmBF16(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, f.lda, b, f.ldb, tc.beta, c, f.ldc)
				if kern == KernelAVX512 && bf16Kernel != nil {
					// The VDPBF16PS mode too (not SgemmBF16's default).
					c2 := append([]float32(nil), f.c0...)
					sgemmBF16With(bf16Kernel, 2, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, f.lda, b, f.ldb, tc.beta, c2, f.ldc)
					f.check(t, what+"/vdpbf16ps", c2)
				}
				if amx := amxKernelIfUsable(); kern == KernelAVX512 && amx != nil {
					c2 := append([]float32(nil), f.c0...)
					sgemmBF16With(amx, 2, threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, f.lda, b, f.ldb, tc.beta, c2, f.ldc)
					f.check(t, what+"/amx", c2)
				}
				f.check(t, what, c)
				for row := 0; row < tc.m; row++ {
					for j := 0; j < tc.n; j++ {
						got, w := float64(c[row*f.ldc+j]), wantF[row*tc.n+j]
						if d := math.Abs(got - w); !(d <= 1.0/128*f.absSum[row*tc.n+j]+1e-30) {
							t.Fatalf("%s %+v: C[%d][%d] = %v, unrounded product %v: off by more than bf16 precision", what, tc, row, j, got, w)
						}
					}
				}
			}
		}
	}
}

// TestRoundBF16Slice checks the vector rounding against ToBF16 on every
// 65537th bit pattern and the special values, at every offset of a tail.
func TestRoundBF16Slice(t *testing.T) {
	var xs []float32
	for b := uint64(0); b < 1<<32; b += 65537 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	for _, u := range []uint32{0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0x80000000, 0x7f800000, 0x7f7fffff,
		0xff800000, 0x00000001, 0x7f800001, 0xffc00001, 0x7fffffff, 0x807fffff} {
		xs = append(xs, math.Float32frombits(u))
	}
	for off := 0; off < 17; off++ {
		got := append([]float32(nil), xs[off:]...)
		roundBF16Slice(got)
		for i, x := range xs[off:] {
			want := FromBF16(ToBF16(x))
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("roundBF16Slice(%#08x) = %#08x, ToBF16 gives %#08x", math.Float32bits(x), math.Float32bits(got[i]), math.Float32bits(want))
			}
		}
	}
}

// TestFromBF16Slice checks the vector widening against FromBF16 for every
// bf16 value, at every offset of a tail.
func TestFromBF16Slice(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	for off := 0; off < 17; off++ {
		dst := make([]float32, len(src)-off)
		FromBF16Slice(dst, src[off:])
		for i, h := range src[off:] {
			if math.Float32bits(dst[i]) != uint32(h)<<16 {
				t.Fatalf("FromBF16Slice(%#04x) = %#08x", h, math.Float32bits(dst[i]))
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a short dst did not panic")
		}
	}()
	FromBF16Slice(make([]float32, 3), src[:4])
}

// TestBF16Kernel checks the kernel name bench reports against the kernel
// the products use.
func TestBF16Kernel(t *testing.T) {
	if got := (Config{Kernel: KernelGeneric}).BF16Kernel(); got != "widen" {
		t.Errorf("generic: BF16Kernel() = %q, want widen", got)
	}
	if !KernelAVX512.Available() {
		return
	}
	cfg := Config{Kernel: KernelAVX512}
	want := "widen"
	switch k := bf16KernelFor(cfg.Resolve(), bf16Choice()); {
	case k == nil:
	case k == amxKernelIfUsable():
		want = "amx"
	case k == bf16Kernel:
		want = "vdpbf16ps"
	default:
		t.Fatalf("bf16KernelFor returned an unknown kernel %q", k.name)
	}
	if got := cfg.BF16Kernel(); got != want {
		t.Errorf("avx512: BF16Kernel() = %q, want %q", got, want)
	}
}
