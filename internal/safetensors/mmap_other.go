//go:build !unix

package safetensors

import "os"

// mapFile reads the whole file; this platform has no mapping here.
func mapFile(fh *os.File, size int64) ([]byte, bool, error) {
	b, err := readAll(fh, size)
	return b, false, err
}

func unmap([]byte) error { return nil }
