package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/gantryml/gantry/internal/core"
	"net/http"
	"sync"
	"time"

	"github.com/gantryml/gantry/internal/api"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/store"
)

// Pieces owned by other engineers that have not landed yet; each is
// replaced by the real one when it does.

func objectStorageHandler(objs *objectstore.Store, ids store.Identities) http.Handler {
	return api.NewObjectStorageHandler(objs, ids)
}

// runWorkers is a minimal claim loop over store.Jobs until E1's
// jobs.Runner lands: it claims ready jobs, runs their handler, renews
// nothing (leases are long) and releases running jobs on shutdown.
func (s *Server) runWorkers(ctx context.Context) error {
	handlers := s.handlers()
	owner := "gantry-" + api.NewOCID("worker")
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		j, err := s.Store.ClaimJob(ctx, owner, time.Now().UTC(), 10*time.Minute)
		if errors.Is(err, store.ErrNotFound) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.wake:
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("claim job", "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := handlers[j.Kind]
			var herr error
			if h == nil {
				herr = fmt.Errorf("no handler for job kind %q", j.Kind)
			} else {
				herr = h(ctx, j)
			}
			bg := context.WithoutCancel(ctx)
			switch {
			case herr != nil && ctx.Err() != nil:
				if err := s.Store.ReleaseJob(bg, j.ID, owner); err != nil {
					s.log.Warn("release job", "job", j.ID, "err", err)
				}
			case herr != nil:
				s.log.Warn("job failed", "job", j.ID, "kind", j.Kind, "err", herr)
				_ = s.Store.FinishJob(bg, j.ID, owner, core.JobFailed, herr.Error())
			default:
				_ = s.Store.FinishJob(bg, j.ID, owner, core.JobSucceeded, "")
			}
			s.notify()
		}()
	}
}
