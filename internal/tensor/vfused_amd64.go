//go:build amd64 && !purego

package tensor

// Assembly in vfused_amd64.s; n is any length ≥ 1 (the tail is masked).

import "golang.org/x/sys/cpu"

const fusedAsm = true

var hasAVX512DQ = hasAVX512 && cpu.X86.HasAVX512DQ

//go:noescape
func dropoutScaleAVX512(out, x *float32, mask *uint64, n int, scale float32)

//go:noescape
func dropoutScaleAddAVX512(dx, d *float32, mask *uint64, n int, scale float32)

//go:noescape
func expSubSumAVX512(x *float32, n int, m float32) float64

//go:noescape
func expSubGradAVX512(p, dp *float32, n int, l, c float32)

// maxIndexAVX512 leaves lane j's maximum over the elements i ≡ j (mod 16)
// and the index of its first occurrence in lanes[j], idx[j] (−Inf and 0
// for a lane without a non-NaN element). n ≥ 16.
//
//go:noescape
func maxIndexAVX512(x *float32, n int, lanes *[16]float32, idx *[16]int32)

//go:noescape
func swigluAVX512(out, sig, gate, up *float32, n int)

//go:noescape
func swigluGradAVX512(dg, du, dout, gate, up, sig *float32, n int)

//go:noescape
func sumSquaresAVX512(x *float32, n int) float64

//go:noescape
func scaleMulAVX512(out, x, w *float32, n int, r float32)

//go:noescape
func addSumSquaresAVX512(dst, x, y *float32, n int) float64

//go:noescape
func rmsGradDotAVX512(dout, x, w *float32, n int, r float32) float64

//go:noescape
func rmsGradAddAVX512(dx, dout, x, w *float32, n int, r, c float32)

// loraDownAVX512 sets u[n, 0..7] (row stride r) for eight rows of A
// (a points at row k0, row stride in) over rows rows of x.
//
//go:noescape
func loraDownAVX512(u, x *float32, mask *uint16, a *float32, rows, in, r int, scale float32)

//go:noescape
func loraUpAddAVX512(dx, du *float32, mask *uint16, a *float32, rows, in, r int, scale float32)

// loraDownGradAVX512 adds to da[0..7, 0..15] (row stride in) the sums over
// rows of du[n, 0..7] (row stride r) times the 16 dropped-out x[n, 0..15].
//
//go:noescape
func loraDownGradAVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32)

// loraDownGrad32AVX512 is loraDownGradAVX512 for 32 columns.
//
//go:noescape
func loraDownGrad32AVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32)

// dropoutMaskAVX512 fills n words (n a multiple of 8) of
// DropoutMaskWords, words w0, w0+1, … .
//
//go:noescape
func dropoutMaskAVX512(mask *uint64, n int, w0, key, t4 uint64)

// The NoMask kernels are the ones above with every element kept: mask is
// not read.

//go:noescape
func loraDownNoMaskAVX512(u, x *float32, mask *uint16, a *float32, rows, in, r int, scale float32)

//go:noescape
func loraUpAddNoMaskAVX512(dx, du *float32, mask *uint16, a *float32, rows, in, r int, scale float32)

//go:noescape
func loraDownGradNoMaskAVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32)

//go:noescape
func loraDownGrad32NoMaskAVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32)

// rotateHalfAVX512 is RotateHalf for h a multiple of 16; sin is
// multiplied by sign (±1, exact).
//
//go:noescape
func rotateHalfAVX512(x, cos, sin *float32, heads, h int, sign float32)

//go:noescape
func maxAVX512(x *float32, n int) float32

// swigluGradSigAVX512 is swigluGradAVX512 with σ(g) recomputed as
// swigluAVX512 computes it.
//
//go:noescape
func swigluGradSigAVX512(dg, du, dout, gate, up *float32, n int)
