//go:build unix

package objectstore

import (
	"errors"
	"os"
	"syscall"
)

// lockTemp takes an exclusive advisory lock on a temporary file for as long
// as the writer holds it open; the kernel drops it when the file is closed
// or the process dies, even by SIGKILL.
func lockTemp(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// abandonedTemp reports whether no live writer holds the temporary file at
// path: its lock can be taken. Such a file is the leftover of a write that
// was interrupted, in this process's previous life or in another process
// sharing the root.
func abandonedTemp(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false
	}
	return err == nil
}
