//go:build !unix

package jobs

import (
	"errors"
	"os"
)

// tryLock is unsupported here: no runner is ever judged dead early, and
// Options.LockDir fails Run.
func tryLock(f *os.File) (bool, error) {
	return false, errors.New("file locks are not supported on this platform")
}
