package tensor

import (
	"fmt"
	"math"
	"testing"
)

// vmathInputs returns float32 values spread over the whole range: every
// stride-th bit pattern (both signs, subnormals, Inf and NaN included),
// a dense sweep of the interval where exp is finite and nonzero, and the
// special values.
func vmathInputs(stride uint32) []float32 {
	var xs []float32
	for b := uint64(0); b < 1<<32; b += uint64(stride) {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	for v := float32(-110); v < 95; v += 0.0037 {
		xs = append(xs, v)
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		88.72283, 88.72284, 88.7229, 88.75, 89, -87.33654, -87.3366, -103.27893, -103.972, -103.98, -104, -105,
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 1e-30, -1e-30)
	return xs
}

// ulpDiff returns |got − want| in units of the float32 spacing at want
// (the subnormal spacing below the normal range).
func ulpDiff(got float32, want float64) float64 {
	if math.IsNaN(want) {
		if got != got {
			return 0
		}
		return math.Inf(1)
	}
	if math.IsInf(want, 0) || math.Abs(want) > math.MaxFloat32 {
		if math.IsInf(float64(got), int(math.Copysign(1, want))) {
			return 0
		}
		// the largest finite float for a result just above it is 1 ulp off
		return math.Abs(float64(got)-want) / math.Pow(2, 104)
	}
	a := math.Abs(want)
	ulp := math.Pow(2, -149)
	if a >= math.Pow(2, -126) {
		_, e := math.Frexp(a) // a = f·2^e, f in [0.5, 1)
		ulp = math.Pow(2, float64(e-24))
	}
	return math.Abs(float64(got)-want) / ulp
}

func sigmoid64(x float64) float64 {
	if x < 0 {
		e := math.Exp(x)
		return e / (1 + e)
	}
	return 1 / (1 + math.Exp(-x))
}

var vmathFuncs = []struct {
	name string
	mode int
	ref  func(float64) float64
	max  float64 // ulp bound asserted
}{
	{"Exp", modeExp, math.Exp, 2},
	{"Sigmoid", modeSigmoid, sigmoid64, 3},
	{"SiLU", modeSiLU, func(x float64) float64 { return x * sigmoid64(x) }, 4},
}

func runVmath(k Kernel, mode int, dst, x []float32) {
	cfg := Config{Kernel: k}
	switch mode {
	case modeExp:
		cfg.Exp(dst, x)
	case modeSigmoid:
		cfg.Sigmoid(dst, x)
	default:
		cfg.SiLU(dst, x)
	}
}

// TestVmathAccuracy checks every kernel against float64 math over the
// whole float32 range, and that the assembly kernels agree bit for bit.
func TestVmathAccuracy(t *testing.T) {
	stride := uint32(4099)
	if testing.Short() {
		stride = 65537
	}
	xs := vmathInputs(stride)
	for _, f := range vmathFuncs {
		var first []float32
		for _, k := range AvailableKernels() {
			got := make([]float32, len(xs))
			runVmath(k, f.mode, got, xs)
			worst, worstX := 0.0, float32(0)
			for i, x := range xs {
				want := f.ref(float64(x))
				if f.mode == modeSiLU && math.IsInf(float64(x), -1) {
					want = math.NaN() // −Inf·0
				}
				d := ulpDiff(got[i], want)
				if f.mode == modeSiLU && x < -87 && math.Abs(float64(got[i])-want) <= -float64(x)*math.Pow(2, -149) {
					// e^x is subnormal here, so x·e^x carries |x| times
					// its absolute error: allowed, and documented.
					d = 0
				}
				if d > worst {
					worst, worstX = d, x
				}
			}
			t.Logf("%s %v: max error %.2f ulp at x=%v", f.name, k, worst, worstX)
			if worst > f.max {
				t.Errorf("%s %v: error %.2f ulp at x=%v (got %v, want %v), bound %v", f.name, k, worst, worstX,
					got[indexOf(xs, worstX)], f.ref(float64(worstX)), f.max)
			}
			if k == KernelGeneric {
				continue
			}
			if first != nil {
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(first[i]) && !(got[i] != got[i] && first[i] != first[i]) {
						t.Fatalf("%s: %v gives %v for x=%v, the other assembly kernel %v", f.name, k, got[i], xs[i], first[i])
					}
				}
			}
			first = got
		}
	}
}

func indexOf(xs []float32, x float32) int {
	for i, v := range xs {
		if math.Float32bits(v) == math.Float32bits(x) {
			return i
		}
	}
	return 0
}

// TestVmathSpecial pins the values at the ends of the range.
func TestVmathSpecial(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	cases := []struct {
		mode    int
		x, want float32
	}{
		{modeExp, 0, 1}, {modeExp, inf, inf}, {modeExp, -inf, 0}, {modeExp, 89, inf}, {modeExp, -105, 0},
		{modeExp, math.MaxFloat32, inf}, {modeExp, -math.MaxFloat32, 0}, {modeExp, nan, nan},
		{modeSigmoid, 0, 0.5}, {modeSigmoid, inf, 1}, {modeSigmoid, -inf, 0}, {modeSigmoid, nan, nan},
		{modeSigmoid, 200, 1}, {modeSigmoid, -200, 0},
		{modeSiLU, 0, 0}, {modeSiLU, inf, inf}, {modeSiLU, nan, nan}, {modeSiLU, -200, 0}, {modeSiLU, 200, 200},
	}
	for _, k := range AvailableKernels() {
		for _, c := range cases {
			got := []float32{c.x}
			runVmath(k, c.mode, got, got)
			same := got[0] == c.want || (got[0] != got[0] && c.want != c.want)
			if !same {
				t.Errorf("%v mode %d x=%v: got %v, want %v", k, c.mode, c.x, got[0], c.want)
			}
		}
	}
}

// TestVmathTailsAndAliasing checks that every length (whole vectors and
// tails) gives each element the value it has alone, in place or not.
func TestVmathTailsAndAliasing(t *testing.T) {
	for _, k := range AvailableKernels() {
		for _, f := range vmathFuncs {
			for n := 0; n <= 40; n++ {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(i)*0.37 - 7
				}
				dst := make([]float32, n)
				runVmath(k, f.mode, dst, x)
				in := append([]float32(nil), x...)
				runVmath(k, f.mode, in, in)
				for i := range x {
					one := []float32{x[i]}
					runVmath(k, f.mode, one, one)
					if dst[i] != one[0] || in[i] != one[0] {
						t.Fatalf("%v %s n=%d: element %d is %v (in place %v), alone %v", k, f.name, n, i, dst[i], in[i], one[0])
					}
				}
			}
		}
	}
}

func TestVmathLengthPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !containsStr(fmt.Sprint(r), "lengths") {
			t.Fatalf("recover() = %v, want a panic naming the lengths", r)
		}
	}()
	Sigmoid(make([]float32, 3), make([]float32, 4))
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkVmath(b *testing.B) {
	x := make([]float32, 1<<14)
	for i := range x {
		x[i] = float32(i%2000)*0.01 - 10
	}
	dst := make([]float32, len(x))
	for _, f := range vmathFuncs {
		for _, k := range AvailableKernels() {
			b.Run(fmt.Sprintf("%s/%v", f.name, k), func(b *testing.B) {
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					runVmath(k, f.mode, dst, x)
				}
			})
		}
		b.Run(f.name+"/scalar-math", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				for i, v := range x {
					dst[i] = float32(f.ref(float64(v)))
				}
			}
		})
	}
}
