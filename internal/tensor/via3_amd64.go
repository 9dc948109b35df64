//go:build amd64 && !purego

package tensor

// Assembly in via3_amd64.s.

// swigluScaleAVX512 is SwiGLUScale on n ≥ 1 elements.
//
//go:noescape
func swigluScaleAVX512(out, gate, up, l *float32, n int)

// swigluScaleGradAVX512 is SwiGLUScaleGrad on n ≥ 1 columns of rows ≥ 1
// rows (row stride stride elements); the pointers are at the first column.
//
//go:noescape
func swigluScaleGradAVX512(dg, du, dl, dy, gate, up, l *float32, rows, stride, n int)

// scaleGradAVX512 is ScaleGrad on n ≥ 1 columns of rows ≥ 1 rows (row
// stride stride elements); the pointers are at the first column; dl may
// be nil.
//
//go:noescape
func scaleGradAVX512(dx, dl, dy, x, l *float32, rows, stride, n int)
