//go:build !amd64 || purego

package tensor

// cpuVendor is empty off amd64: there is no VDPBF16PS kernel to choose.
func cpuVendor() string { return "" }
