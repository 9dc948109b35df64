//go:build !amd64 || purego

package tensor

// fmaLoopFor has no FMA loop to offer off amd64.
func fmaLoopFor(Kernel) (func(iters int), float64) { return nil, 0 }
