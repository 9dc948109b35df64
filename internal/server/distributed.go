package server

// Distributed mode: one database (PostgreSQL), API servers and worker-only
// processes (Config.NoAPI) on one or more hosts.
//
// What every process must share, besides the database:
//   - DATA/objects: datasets are read and artifacts written by workers,
//     uploaded and downloaded through the API servers;
//   - DATA/base-models: the catalog the API validates against and the
//     weights workers train from.
//
// On several hosts these two directories live on a shared filesystem
// (NFS or similar) mounted at the same DATA path, or every process runs on
// one host. What stays per process: DATA/jobs (a fine-tune's working files
// and checkpoints; another host's worker that takes a job over starts it
// again from the dataset) and DATA/workers (the lock files that prove a
// runner alive to the other runners of its host).
//
// The check: every API server writes DATA/objects/.gantry-deployment naming
// the store it serves (the OCID of its first tenancy). A worker-only
// process runs no job until it reads there the name of the store it is
// connected to, so a worker whose DATA/objects is not the API servers'
// logs an error and waits instead of failing models.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/core"
)

// DeploymentFile is the marker, inside DATA/objects, naming the store
// whose objects the directory holds (see Config.NoAPI).
const DeploymentFile = ".gantry-deployment"

// ErrStorageNotShared is reported (on /readyz and in the logs) by a
// worker-only process whose DATA/objects names another store, or none,
// while its store has tenancies: its objects directory is not the API
// servers'.
var ErrStorageNotShared = errors.New("DATA/objects is not shared with the API servers")

// deploymentID names a store: the OCID of its oldest tenancy (the one the
// first API server bootstrapped); "" when it has none yet.
func deploymentID(ctx context.Context, st interface {
	ListTenancies(context.Context) ([]*core.Tenancy, error)
}) (string, error) {
	ts, err := st.ListTenancies(ctx)
	if err != nil {
		return "", fmt.Errorf("list tenancies: %w", err)
	}
	var first *core.Tenancy
	for _, t := range ts {
		if first == nil || t.TimeCreated.Before(first.TimeCreated) ||
			(t.TimeCreated.Equal(first.TimeCreated) && t.ID < first.ID) {
			first = t
		}
	}
	if first == nil {
		return "", nil
	}
	return first.ID, nil
}

// writeDeploymentMarker records, in DATA/objects, which store this data
// directory belongs to (an API server does it on every start).
func (s *Server) writeDeploymentMarker(ctx context.Context) error {
	id, err := deploymentID(ctx, s.Store)
	if err != nil || id == "" {
		return err
	}
	path := filepath.Join(s.cfg.DataDir, "objects", DeploymentFile)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == id {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".deployment-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(id + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// checkSharedStorage reports whether this process's DATA/objects belongs
// to its store: nil when the marker names the store, errNoDeployment when
// the store has no tenancy yet (no API server has started), else an error
// wrapping ErrStorageNotShared.
func (s *Server) checkSharedStorage(ctx context.Context) error {
	id, err := deploymentID(ctx, s.Store)
	if err != nil {
		return err
	}
	if id == "" {
		return errNoDeployment
	}
	path := filepath.Join(s.cfg.DataDir, "objects", DeploymentFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist (mount the API servers' DATA/objects and DATA/base-models here, or start an API server on this data directory first)", ErrStorageNotShared, path)
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	case strings.TrimSpace(string(b)) != id:
		return fmt.Errorf("%w: %s names store %q, the database's is %q", ErrStorageNotShared, path, strings.TrimSpace(string(b)), id)
	}
	return nil
}

var errNoDeployment = errors.New("the store has no tenancy yet: waiting for an API server to bootstrap it")

// waitSharedStorage blocks until checkSharedStorage passes, logging why it
// waits (at most every 10 s), or until ctx is done.
func (s *Server) waitSharedStorage(ctx context.Context, every time.Duration) error {
	var lastLog time.Time
	var lastErr string
	for {
		err := s.checkSharedStorage(ctx)
		s.storageErr.Store(&storageState{err: err})
		if err == nil {
			if lastErr != "" {
				s.log.Info("shared storage verified", "objects", filepath.Join(s.cfg.DataDir, "objects"))
			}
			return nil
		}
		if err.Error() != lastErr || time.Since(lastLog) >= 10*time.Second {
			if errors.Is(err, errNoDeployment) {
				s.log.Info("job runner waiting", "reason", err)
			} else {
				s.log.Error("job runner waiting: cannot verify shared storage", "err", err)
			}
			lastErr, lastLog = err.Error(), time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// storageState is the latest shared-storage check of a worker-only
// process (nil error: verified).
type storageState struct{ err error }

// healthHandler serves a worker-only process's /healthz, /readyz (store
// reachable and shared storage verified) and /metrics.
func (s *Server) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := s.storageErr.Load()
		switch {
		case st == nil:
			http.Error(w, "job runner not started", http.StatusServiceUnavailable)
			return
		case st.err != nil:
			http.Error(w, "job runner waiting: "+st.err.Error(), http.StatusServiceUnavailable)
			return
		}
		s.readyz(w, r)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := s.Metrics.Write(r.Context(), w, s.Store); err != nil {
			s.log.Warn("write metrics", "err", err)
		}
	})
	return mux
}

// serveWorkerOnly runs the job runner until ctx is done, serving the
// health endpoints on ln when it is not nil; then running jobs go back to
// the queue.
func (s *Server) serveWorkerOnly(ctx context.Context, ln net.Listener) error {
	var srv *http.Server
	serveErr := make(chan error, 1)
	if ln != nil {
		srv = &http.Server{Handler: s.healthHandler(), ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
		go func() { serveErr <- srv.Serve(ln) }()
		s.log.Info("worker-only process: serving health endpoints", "addr", ln.Addr().String(), "data", s.cfg.DataDir)
	} else {
		s.log.Info("worker-only process", "data", s.cfg.DataDir)
	}
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	workDone := make(chan error, 1)
	go func() { workDone <- s.runWorkers(workCtx) }()

	var err error
	select {
	case <-ctx.Done():
		err = <-workDone
	case err = <-serveErr:
		stopWork()
		if werr := <-workDone; err == nil {
			err = werr
		}
	case err = <-workDone:
		if ctx.Err() == nil && err == nil {
			err = errors.New("job workers stopped unexpectedly")
		}
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if srv != nil {
		shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if e := srv.Shutdown(shCtx); e != nil && err == nil {
			err = fmt.Errorf("health server shutdown: %w", e)
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
