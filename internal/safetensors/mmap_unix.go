//go:build unix

package safetensors

import (
	"os"
	"syscall"
)

// mapFile maps the whole file privately (copy-on-write), falling back to
// reading it when mapping fails.
func mapFile(fh *os.File, size int64) ([]byte, bool, error) {
	if int64(int(size)) == size {
		b, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
		if err == nil {
			return b, true, nil
		}
	}
	b, err := readAll(fh, size)
	return b, false, err
}

func unmap(b []byte) error { return syscall.Munmap(b) }
