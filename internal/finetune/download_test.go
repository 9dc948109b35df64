package finetune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/server"
)

// TestDownloadStreams copies a 24 MiB dataset object into a working
// directory that holds a partial copy left by a killed attempt: the
// partial copy is removed, the dataset arrives byte for byte, and the
// copy allocates a small fraction of its size (it streams; the object is
// never whole in memory).
func TestDownloadStreams(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	objs, err := objectstore.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := objs.EnsureBucket(ctx, "ns", "data", "ocid1.tenancy.oc1..t"); err != nil {
		t.Fatal(err)
	}
	line := `{"prompt": "p", "completion": "` + strings.Repeat("x", 1000) + `"}` + "\n"
	body := bytes.Repeat([]byte(line), 24<<20/len(line))
	if _, err := objs.PutObject(ctx, "ns", "data", "big.jsonl", bytes.NewReader(body), objectstore.PutOptions{Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(work, "."+datasetFile+".tmp123")
	if err := os.WriteFile(stale, body[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	r := &run{t: &Trainer{}, objs: objs, work: work, log: slog.New(slog.DiscardHandler),
		job: server.TrainJob{Model: &core.Model{ID: "m", FineTuneDetails: &core.FineTuneDetails{
			Dataset: core.Dataset{Namespace: "ns", Bucket: "data", Object: "big.jsonl"}}}}}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	path, err := r.download(ctx)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("downloading %d bytes allocated %d bytes", len(body), alloc)
	if alloc > 2<<20 {
		t.Errorf("downloading %d bytes allocated %d bytes; want under 2 MiB (streamed)", len(body), alloc)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(body) {
		t.Errorf("downloaded dataset: %d bytes, differs from the object's %d", len(got), len(body))
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("partial copy of an earlier attempt left (%v)", err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(work, ".*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %q", tmps)
	}
}

// TestPauseReader checks the crash tests' pause point: the reader stops
// once exactly half of the bytes were read, and a canceled context ends
// the pause with its error.
func TestPauseReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := pauseReader(ctx, bytes.NewReader(data), int64(len(data)), time.Hour)
	buf := make([]byte, 4096)
	n := 0
	for n < len(data)/2 {
		k, err := r.Read(buf)
		if err != nil {
			t.Fatalf("read at %d: %v", n, err)
		}
		n += k
	}
	if n != len(data)/2 {
		t.Fatalf("read %d bytes before the pause, want exactly %d", n, len(data)/2)
	}
	cancel()
	if _, err := r.Read(buf); err != context.Canceled {
		t.Errorf("read during a canceled pause: %v, want context.Canceled", err)
	}
	// Without a pause the reader is the one given.
	src := bytes.NewReader(data)
	if got := pauseReader(ctx, src, int64(len(data)), 0); got != io.Reader(src) {
		t.Errorf("pauseReader with no pause wrapped the reader")
	}
}
