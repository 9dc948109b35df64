//go:build !amd64 || purego

package tensor

func swigluScaleAVX512(out, gate, up, l *float32, n int) { panic("unreachable") }

func swigluScaleGradAVX512(dg, du, dl, dy, gate, up, l *float32, rows, stride, n int) {
	panic("unreachable")
}

func scaleGradAVX512(dx, dl, dy, x, l *float32, rows, stride, n int) { panic("unreachable") }
