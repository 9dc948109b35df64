package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A runner with Options.LockDir proves it is alive with a lock file there:
// LockDir/<owner>.lock, flock-ed for the runner's lifetime and naming the
// owner and the host. The kernel drops a process's flocks when it dies, by
// SIGKILL too, so a lock file that another process can lock belongs to a
// dead runner. On start a runner takes over such files: when the dead
// runner was on the same host (the owner recorded in the file says so), it
// ends the leases of that owner's running jobs, which are then claimed at
// once instead of after the lease. Runners on other hosts (a shared
// PostgreSQL) are never judged this way: their lock files are in their own
// data directories, and a file naming another host is left alone, so only
// what is proved dead is reclaimed early; the rest waits for its lease.

// lockFileExt names owner lock files.
const lockFileExt = ".lock"

// ownerLock is a held owner lock file.
type ownerLock struct {
	f    *os.File
	path string
}

// lockOwner creates and locks dir/<owner>.lock for this process. The file
// is written and locked under a temporary name and renamed into place, so
// another runner never sees it unlocked or half-written.
func lockOwner(dir, owner, host string) (*ownerLock, error) {
	if strings.ContainsAny(owner, "/\\\x00") || owner == "" || owner[0] == '.' {
		return nil, fmt.Errorf("job owner %q cannot name a lock file", owner)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("job owner lock: %w", err)
	}
	f, err := os.CreateTemp(dir, ".owner-*")
	if err != nil {
		return nil, fmt.Errorf("job owner lock: %w", err)
	}
	fail := func(err error) (*ownerLock, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("job owner lock: %w", err)
	}
	if ok, err := tryLock(f); err != nil || !ok {
		if err == nil {
			err = errors.New("a new file is locked by another process")
		}
		return fail(err)
	}
	if _, err := fmt.Fprintf(f, "%s\n%s\n", owner, host); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	path := filepath.Join(dir, owner+lockFileExt)
	if err := os.Rename(f.Name(), path); err != nil {
		return fail(err)
	}
	return &ownerLock{f: f, path: path}, nil
}

// release removes and unlocks the file (a clean exit).
func (l *ownerLock) release() {
	os.Remove(l.path)
	l.f.Close()
}

// deadOwner is a dead runner's lock file, locked by this process.
type deadOwner struct {
	owner string
	f     *os.File
	path  string
}

// deadOwners returns the runners of host whose lock files in dir nobody
// holds, each file now locked by this process; a file of another host,
// or an unreadable one, is skipped.
func deadOwners(dir, host string) ([]deadOwner, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []deadOwner
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, lockFileExt) {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			continue // removed meanwhile
		}
		ok, err := tryLock(f)
		if err != nil || !ok {
			f.Close() // alive, or not lockable here
			continue
		}
		b, err := os.ReadFile(path)
		lines := strings.Split(string(b), "\n")
		if err != nil || len(lines) < 2 || lines[0]+lockFileExt != name || lines[1] != host {
			f.Close()
			continue
		}
		out = append(out, deadOwner{owner: lines[0], f: f, path: path})
	}
	return out, nil
}

// reclaimDead ends the leases of the jobs of every dead runner of this
// host that left a lock file in dir, and removes those files.
func (r *Runner) reclaimDead(ctx context.Context, dir, host string) (owners, jobs int, err error) {
	dead, err := deadOwners(dir, host)
	if err != nil {
		return 0, 0, fmt.Errorf("find dead job runners: %w", err)
	}
	for _, d := range dead {
		n, xerr := r.st.ExpireJobLeases(ctx, d.owner)
		if xerr != nil {
			err = errors.Join(err, fmt.Errorf("expire the leases of dead runner %s: %w", d.owner, xerr))
		} else {
			owners++
			jobs += n
			os.Remove(d.path)
		}
		d.f.Close()
	}
	return owners, jobs, err
}
