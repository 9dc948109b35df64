package jobs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
)

// TestReclaimDeadRunner: a runner starting with a LockDir ends at once
// the leases of a dead runner of its host (its lock file unlocked), but
// not those of a live runner (file still locked) or of a runner of
// another host, which wait for their leases.
func TestReclaimDeadRunner(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "workers")
	now := time.Now()
	for _, owner := range []string{"dead", "live", "remote"} {
		enqueue(t, st, &core.Job{ID: owner + "-job", Kind: "k", Queue: owner})
		if _, err := st.ClaimJob(ctx, owner, now, time.Hour); err != nil {
			t.Fatalf("claim for %s: %v", owner, err)
		}
	}
	dead, err := lockOwner(dir, "dead", "h1")
	if err != nil {
		t.Fatal(err)
	}
	dead.f.Close() // the process died: the kernel dropped its lock
	live, err := lockOwner(dir, "live", "h1")
	if err != nil {
		t.Fatal(err)
	}
	defer live.release()
	remote, err := lockOwner(dir, "remote", "h2")
	if err != nil {
		t.Fatal(err)
	}
	remote.f.Close()

	r := New(st, Options{Owner: "new", Host: "h1", LockDir: dir, Lease: time.Hour, PollInterval: 20 * time.Millisecond, Logger: quiet})
	r.Register("k", func(ctx context.Context, j *core.Job) error { return nil })
	stop := start(t, r)
	j := waitState(t, st, "dead-job", core.JobSucceeded)
	if j.Attempt != 2 {
		t.Errorf("dead runner's job reclaimed as attempt %d, want 2", j.Attempt)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.lock")); err != nil {
		t.Errorf("the running runner has no lock file: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	for _, owner := range []string{"live", "remote"} {
		j, err := st.GetJob(ctx, owner+"-job")
		if err != nil {
			t.Fatal(err)
		}
		if j.State != core.JobRunning || j.LeaseOwner != owner {
			t.Errorf("%s runner's job: %s owned by %q, want running owned by %s", owner, j.State, j.LeaseOwner, owner)
		}
	}
	for name, want := range map[string]bool{"dead.lock": false, "live.lock": true, "remote.lock": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, "new.lock")); !os.IsNotExist(err) {
		t.Errorf("lock file left after a clean stop: %v", err)
	}
}

func TestLockDirBadOwner(t *testing.T) {
	r := New(newStore(t), Options{Owner: "a/b", LockDir: t.TempDir(), Logger: quiet})
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("Run accepted an owner that cannot name a lock file")
	}
}
