package tensor

import (
	"fmt"
	"math"
)

// Vectorised exp, sigmoid and SiLU over float32 slices.
//
// All three share one exp: t is clamped to [−104, 88.75] (NaN passes
// through), n = round(t·log2 e), r = t − n·ln2 with ln2 split in two parts
// (Cody–Waite), e = 2^n·(1 + r + r²·p(r)) with the degree-5 polynomial p
// of Cephes' expf, the scaling by 2^n rounded once (so subnormal results
// are right and large ones overflow to +Inf). Errors are within 2 ulp of
// float64 math.Exp over the whole float32 range (TestExpAccuracy measures
// it). Sigmoid is computed from e = exp(−|x|) as (x < 0 ? e : 1)/(1 + e),
// which never overflows and keeps the relative accuracy for large
// negative x (2 ulp); SiLU as (x < 0 ? x·e : x)/(1 + e) (3 ulp, except
// below x = −87, where e is subnormal and the absolute error is at most
// |x|·2^−149).
//
// The AVX-512 and AVX2 kernels give bit-identical results; the portable
// Go one runs the same steps and may differ from them in the last bit in
// rare cases (its fused multiply-adds round through float64). Every kernel
// is a pure function of its input element: the same input gives the same
// output on every call, at any position in the slice.

// vmathConsts are the constants of the assembly (vmath_amd64.s), in order.
const (
	expHi    = 88.75
	expLo    = -104
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375
	expC2    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

// vmath modes, as the assembly takes them.
const (
	modeExp = iota
	modeSigmoid
	modeSiLU
)

// ExpInPlace sets x[i] = e^x[i], with Default()'s kernel.
func ExpInPlace(x []float32) { Default().Exp(x, x) }

// Exp sets dst[i] = e^x[i], with Default()'s kernel. dst may be x.
// It panics if the lengths differ.
func Exp(dst, x []float32) { Default().Exp(dst, x) }

// Sigmoid sets dst[i] = 1/(1 + e^−x[i]), with Default()'s kernel. dst may
// be x. It panics if the lengths differ.
func Sigmoid(dst, x []float32) { Default().Sigmoid(dst, x) }

// SiLU sets dst[i] = x[i]·sigmoid(x[i]), with Default()'s kernel. dst may
// be x. SiLU(−Inf) is NaN, as x·sigmoid(x) is in IEEE arithmetic. It
// panics if the lengths differ.
func SiLU(dst, x []float32) { Default().SiLU(dst, x) }

// Exp is the package-level Exp run with cfg's kernel (on one goroutine).
func (cfg Config) Exp(dst, x []float32) { cfg.vmath("Exp", dst, x, modeExp) }

// Sigmoid is the package-level Sigmoid run with cfg's kernel.
func (cfg Config) Sigmoid(dst, x []float32) { cfg.vmath("Sigmoid", dst, x, modeSigmoid) }

// SiLU is the package-level SiLU run with cfg's kernel.
func (cfg Config) SiLU(dst, x []float32) { cfg.vmath("SiLU", dst, x, modeSiLU) }

func (cfg Config) vmath(fn string, dst, x []float32, mode int) {
	if len(dst) != len(x) {
		panic(fmt.Sprintf("tensor.%s: lengths %d and %d differ", fn, len(dst), len(x)))
	}
	if len(x) == 0 {
		return
	}
	k := cfg.Kernel
	if k == KernelAuto || !k.Available() {
		k = Best()
	}
	vmathKernel(k, dst, x, mode)
}

// vmathGo is the portable kernel: the steps of the assembly, one element
// at a time.
func vmathGo(dst, x []float32, mode int) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = vmath1(v, mode)
	}
}

func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// vmath1 is one element of vmathGo.
func vmath1(x float32, mode int) float32 {
	t := x
	if mode != modeExp {
		t = -float32(math.Abs(float64(x)))
	}
	// min/max that keep NaN, as VMINPS/VMAXPS with t second.
	if float32(expHi) < t {
		t = expHi
	}
	if float32(expLo) > t {
		t = expLo
	}
	n := float32(math.RoundToEven(float64(t * float32(expLog2e))))
	r := fma32(n, -expC1, t)
	r = fma32(n, -expC2, r)
	p := fma32(expP0, r, expP1)
	p = fma32(p, r, expP2)
	p = fma32(p, r, expP3)
	p = fma32(p, r, expP4)
	p = fma32(p, r, expP5)
	y := fma32(p, r*r, r) + 1
	var e float32
	if n != n {
		e = n
	} else {
		e = float32(math.Ldexp(float64(y), int(n)))
	}
	if mode == modeExp {
		return e
	}
	num := float32(1)
	if x < 0 {
		num = e
	}
	if mode == modeSiLU {
		num *= x
	}
	return num / (1 + e)
}
