package server_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/store/postgres/pgtest"
)

// TestConcurrentFirstStart: API servers opening one empty database and
// data directory at the same moment make one deployment: one tenancy, and
// the DATA/oci/config they all leave names it and a stored key.
func TestConcurrentFirstStart(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			dir := t.TempDir()
			dbURL := ""
			if pg {
				dbURL = pgtest.URL(t)
			}
			const n = 3
			servers := make([]*server.Server, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					servers[i], errs[i] = server.Open(context.Background(), server.Config{
						DataDir: dir, DatabaseURL: dbURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
					})
				}()
			}
			close(gate)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("server %d: %v", i, err)
				}
				t.Cleanup(func() { servers[i].Close() })
			}
			ctx := context.Background()
			tens, err := servers[0].Store.ListTenancies(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(tens) != 1 {
				t.Fatalf("%d servers starting at once made %d tenancies, want 1", n, len(tens))
			}
			p, err := auth.ReadConfig(auth.ConfigPath(dir), "")
			if err != nil {
				t.Fatal(err)
			}
			if p.Tenancy != tens[0].ID {
				t.Fatalf("DATA/oci/config names tenancy %s, the store has %s", p.Tenancy, tens[0].ID)
			}
			for i, s := range servers {
				if _, err := s.Store.GetAPIKey(ctx, p.Tenancy, p.User, p.Fingerprint); err != nil {
					t.Errorf("server %d: the config's key: %v", i, err)
				}
			}
		})
	}
}
