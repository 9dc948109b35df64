//go:build !amd64 || purego

package tensor

func vmathKernel(_ Kernel, dst, x []float32, mode int) { vmathGo(dst, x, mode) }
