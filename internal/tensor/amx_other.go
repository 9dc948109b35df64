//go:build !amd64 || purego

package tensor

// amxKernelIfUsable is nil off amd64: there are no AMX tiles.
func amxKernelIfUsable() *gemmKernel { return nil }

func amxTiles(a []float32, steps int, b []float32, bstride, npanels int, c []float32, ldc int, acc bool, tmp []float32) {
	panic("unreachable")
}
