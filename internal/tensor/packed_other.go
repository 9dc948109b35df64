//go:build !amd64 || purego

package tensor

// cpuVendor is empty off amd64: there is no VDPBF16PS kernel to choose.
func cpuVendor() string { return "" }

// pairsFast has no fast path off amd64.
func pairsFast(dst, src []float32) bool { return false }

// interleaveFast has no fast path off amd64.
func interleaveFast(dst []float32, stride int, lo, hi []float32) bool { return false }

// l2Bytes is unknown off amd64.
func l2Bytes() int { return 0 }
