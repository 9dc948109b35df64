//go:build !unix

package jobs

import (
	"errors"
	"fmt"
	"os"
)

// tryLock is unsupported here: no runner is ever judged dead early, and
// Run ignores Options.LockDir (with a warning).
func tryLock(f *os.File) (bool, error) {
	return false, fmt.Errorf("file locks on this platform: %w", errors.ErrUnsupported)
}
