package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server"
)

// waitReadyz polls url/readyz until its status is want and its body contains
// substr, failing after 10 s.
func waitReadyz(t *testing.T, url string, want int, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var status int
		var body string
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status, body = resp.StatusCode, string(b)
			if status == want && strings.Contains(body, substr) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz: %d %q (%v), want %d containing %q", status, body, err, want, substr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveWorker opens a worker-only server on dataDir's SQLite store and
// serves its health endpoints until the test ends.
func serveWorker(t *testing.T, dataDir string) (*server.Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := server.Open(ctx, server.Config{DataDir: dataDir, NoAPI: true, Logger: slog.New(slog.DiscardHandler),
		InstallDefaultBaseModel: func(context.Context, string) error {
			t.Error("a worker-only server installed the default base model")
			return errors.New("not in a worker")
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Serve: %v", err)
		}
		w.Close()
	})
	return w, "http://" + ln.Addr().String()
}

// TestWorkerOnly: a worker-only server bootstraps nothing and waits for
// an API server; once one has started on the same data directory it is
// ready and knows the base model the API server installed; a worker whose
// DATA/objects names another store is not ready and says why.
func TestWorkerOnly(t *testing.T) {
	ctx := context.Background()
	if _, err := server.Open(ctx, server.Config{DataDir: t.TempDir(), NoAPI: true, NoWorkers: true}); err == nil {
		t.Error("Open with NoAPI and NoWorkers succeeded")
	}

	dataDir := t.TempDir()
	w, url := serveWorker(t, dataDir)
	if resp, body := get(t, url+"/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("worker healthz: %d %q", resp.StatusCode, body)
	}
	waitReadyz(t, url, http.StatusServiceUnavailable, "no tenancy yet")
	if _, err := os.Stat(auth.ConfigPath(dataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a worker-only server wrote %s: %v", auth.ConfigPath(dataDir), err)
	}
	if ts, err := w.Store.ListTenancies(ctx); err != nil || len(ts) != 0 {
		t.Errorf("a worker-only server created tenancies: %d, %v", len(ts), err)
	}
	if resp, _ := get(t, url+"/20231130/models", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("worker-only server answered an API path: %d", resp.StatusCode)
	}

	// An API server on the same data directory bootstraps and installs
	// the base model; the worker becomes ready and finds the model.
	a, err := server.Open(ctx, server.Config{DataDir: dataDir, NoWorkers: true, Logger: slog.New(slog.DiscardHandler),
		InstallDefaultBaseModel: server.InstallTinyBaseModel})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitReadyz(t, url, http.StatusOK, "ready")
	id := server.BaseModelID(server.DefaultBaseModelName)
	if _, ok := w.Catalog.Get(id); ok {
		t.Fatal("worker catalog knew the base model before reloading")
	}
	if err := w.Catalog.Reload(dataDir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Catalog.Get(id); !ok {
		t.Error("worker catalog lacks the API server's base model after Reload")
	}

	// A second worker whose DATA/objects names another store (as a
	// local directory of another deployment would) waits, saying why.
	marker := filepath.Join(dataDir, "objects", server.DeploymentFile)
	if err := os.WriteFile(marker, []byte("ocid1.tenancy.oc1..another\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, url2 := serveWorker(t, dataDir)
	waitReadyz(t, url2, http.StatusServiceUnavailable, "not shared with the API servers")
}
