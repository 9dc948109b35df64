package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeModel(t *testing.T, root, name, config, spec string) {
	t.Helper()
	dir := filepath.Join(root, BaseModelsDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if spec != "" {
		if err := os.WriteFile(filepath.Join(dir, CatalogFile), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadCatalog(t *testing.T) {
	root := t.TempDir()
	writeModel(t, root, "plain", `{"model_type":"qwen2","num_hidden_layers":24}`, "")
	writeModel(t, root, "described", `{"model_type":"llama","num_hidden_layers":16}`,
		`{"displayName":"Llama 3.2 1B","vendor":"meta","version":"3.2","capabilities":["CHAT"],"isLongTermSupported":false,"timeDeprecated":"2027-01-01T00:00:00Z"}`)
	writeModel(t, root, "no-config", "", "")
	writeModel(t, root, "bad-json", `{"model_type":`, "")
	writeModel(t, root, "bad-layers", `{"model_type":"llama","num_hidden_layers":0}`, "")
	writeModel(t, root, "bad-capability", `{"model_type":"llama","num_hidden_layers":2}`, `{"capabilities":["FLY"]}`)
	writeModel(t, root, "unknown-field", `{"model_type":"llama","num_hidden_layers":2}`, `{"colour":"red"}`)

	c, err := LoadCatalog(root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("catalog has %d models, want 2 (the bad directories skipped)", c.Len())
	}
	p, ok := c.Get(BaseModelID("plain"))
	if !ok {
		t.Fatal("plain model missing")
	}
	m := p.Model
	if m.DisplayName != "plain" || m.Vendor != "qwen2" || m.Version != "1" || !m.IsLongTermSupported || m.TimeDeprecated != nil ||
		!slices.Equal(m.Capabilities, []string{"FINE_TUNE", "TEXT_GENERATION", "CHAT"}) || m.Type != "BASE" || m.LifecycleState != "ACTIVE" || p.NumLayers != 24 {
		t.Errorf("defaults: %+v layers %d", m, p.NumLayers)
	}
	d, ok := c.Get(BaseModelID("described"))
	if !ok {
		t.Fatal("described model missing")
	}
	m = d.Model
	if m.DisplayName != "Llama 3.2 1B" || m.Vendor != "meta" || m.Version != "3.2" || m.IsLongTermSupported ||
		m.TimeDeprecated == nil || !m.TimeDeprecated.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !slices.Equal(m.Capabilities, []string{"CHAT"}) {
		t.Errorf("gantry.json: %+v", m)
	}
	if n, ok := c.NumLayers(BaseModelID("described")); !ok || n != 16 {
		t.Errorf("NumLayers = %d, %v", n, ok)
	}
}

func TestBaseModelIDStable(t *testing.T) {
	a, b := BaseModelID("gantry-tiny"), BaseModelID("gantry-tiny")
	if a != b || a == BaseModelID("gantry-tiny2") || !strings.HasPrefix(a, "ocid1.generativeaimodel.oc1..") {
		t.Errorf("BaseModelID: %s %s", a, b)
	}
}

func TestCatalogMissingDir(t *testing.T) {
	c, err := LoadCatalog(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || c.Len() != 0 {
		t.Errorf("empty data dir: %v, %d models", err, c.Len())
	}
}

func TestInstallTinyBaseModel(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, BaseModelsDir, DefaultBaseModelName)
	if err := installDir(context.Background(), dir, InstallTinyBaseModel); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", CatalogFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("installed model lacks %s: %v", f, err)
		}
	}
	c, err := LoadCatalog(root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	bm, ok := c.Get(BaseModelID(DefaultBaseModelName))
	if !ok || bm.Model.Vendor != "gantry" || bm.NumLayers != 2 {
		t.Fatalf("installed base model in catalog: %v %+v", ok, bm)
	}
	// A failing install leaves nothing behind.
	bad := filepath.Join(root, BaseModelsDir, "bad")
	err = installDir(context.Background(), bad, func(ctx context.Context, d string) error {
		os.WriteFile(filepath.Join(d, "config.json"), []byte("{}"), 0o644)
		return io.ErrUnexpectedEOF
	})
	if err == nil {
		t.Fatal("failing install succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(root, BaseModelsDir))
	if len(entries) != 1 {
		t.Errorf("a failed install left %d entries", len(entries))
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(2, 3)
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if ok, _ := l.take("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.take("a")
	if ok || wait != 500*time.Millisecond {
		t.Errorf("4th request: %v, wait %v; want refused for 500ms", ok, wait)
	}
	if ok, _ := l.take("b"); !ok {
		t.Error("another key shares the bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.take("a"); !ok {
		t.Error("no token after refill")
	}
}
