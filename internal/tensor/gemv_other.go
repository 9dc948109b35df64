//go:build !amd64 || purego

package tensor

func gemvRowsKernel(Kernel, []float32, []float32, int, int, int, func(int, float32)) bool {
	return false
}

func gemvBatchKernel(Kernel, []float32, []float32, int, int, int, int, func(int, int, float32)) bool {
	return false
}
