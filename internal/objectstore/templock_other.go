//go:build !unix

package objectstore

import (
	"os"
	"time"
)

// lockTemp is a no-op where advisory file locks are not available.
func lockTemp(*os.File) error { return nil }

// abandonedTemp, without file locks, treats a temporary file as abandoned
// once it is older than StaleTemp.
func abandonedTemp(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && time.Since(fi.ModTime()) > StaleTemp
}
