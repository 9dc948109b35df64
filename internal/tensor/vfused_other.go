//go:build !amd64 || purego

package tensor

const fusedAsm = false

const hasAVX512DQ = false

func dropoutScaleAVX512(out, x *float32, mask *uint64, n int, scale float32) { panic("unreachable") }

func dropoutScaleAddAVX512(dx, d *float32, mask *uint64, n int, scale float32) { panic("unreachable") }

func expSubSumAVX512(x *float32, n int, m float32) float64 { panic("unreachable") }

func expSubGradAVX512(p, dp *float32, n int, l, c float32) { panic("unreachable") }

func maxIndexAVX512(x *float32, n int, lanes *[16]float32, idx *[16]int32) { panic("unreachable") }

func swigluAVX512(out, sig, gate, up *float32, n int) { panic("unreachable") }

func swigluGradAVX512(dg, du, dout, gate, up, sig *float32, n int) { panic("unreachable") }

func sumSquaresAVX512(x *float32, n int) float64 { panic("unreachable") }

func scaleMulAVX512(out, x, w *float32, n int, r float32) { panic("unreachable") }

func addSumSquaresAVX512(dst, x, y *float32, n int) float64 { panic("unreachable") }

func rmsGradDotAVX512(dout, x, w *float32, n int, r float32) float64 { panic("unreachable") }

func rmsGradAddAVX512(dx, dout, x, w *float32, n int, r, c float32) { panic("unreachable") }

func loraDownAVX512(u, x *float32, mask *uint16, a *float32, rows, in, r int, scale float32) {
	panic("unreachable")
}

func loraUpAddAVX512(dx, du *float32, mask *uint16, a *float32, rows, in, r int, scale float32) {
	panic("unreachable")
}

func loraDownGradAVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32) {
	panic("unreachable")
}

func loraDownGrad32AVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32) {
	panic("unreachable")
}

func dropoutMaskAVX512(mask *uint64, n int, w0, key, t4 uint64) { panic("unreachable") }

func loraDownNoMaskAVX512(u, x *float32, mask *uint16, a *float32, rows, in, r int, scale float32) {
	panic("unreachable")
}

func loraUpAddNoMaskAVX512(dx, du *float32, mask *uint16, a *float32, rows, in, r int, scale float32) {
	panic("unreachable")
}

func loraDownGradNoMaskAVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32) {
	panic("unreachable")
}

func loraDownGrad32NoMaskAVX512(da, du, x *float32, mask *uint16, rows, in, r int, scale float32) {
	panic("unreachable")
}

func rotateHalfAVX512(x, cos, sin *float32, heads, h int, sign float32) { panic("unreachable") }

func maxAVX512(x *float32, n int) float32 { panic("unreachable") }

func swigluGradSigAVX512(dg, du, dout, gate, up *float32, n int) { panic("unreachable") }
