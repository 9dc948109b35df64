package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// BaseModelsDir is the catalog directory inside a data directory: every
// Hugging Face model directory DATA/base-models/NAME/ is a base model.
const BaseModelsDir = "base-models"

// CatalogFile is the optional description beside a base model's config.json.
const CatalogFile = "gantry.json"

// BaseModelSpec is a base model directory's gantry.json. Every field is
// optional; Catalog fills in the defaults.
type BaseModelSpec struct {
	DisplayName         string     `json:"displayName,omitempty"`
	Vendor              string     `json:"vendor,omitempty"`
	Version             string     `json:"version,omitempty"`
	Capabilities        []string   `json:"capabilities,omitempty"`
	IsLongTermSupported *bool      `json:"isLongTermSupported,omitempty"`
	TimeDeprecated      *time.Time `json:"timeDeprecated,omitempty"`
}

// BaseModel is one catalog entry: the model as the API shows it, its
// directory and its layer count.
type BaseModel struct {
	Model     *core.Model
	Dir       string
	NumLayers int
}

// Catalog is the set of base models found in a data directory. It is
// safe for concurrent use.
type Catalog struct {
	mu     sync.RWMutex
	byID   map[string]*BaseModel
	byName map[string]*BaseModel
}

// BaseModelID returns the OCID of the base model directory NAME: derived
// from NAME alone, so it is the same on every start and every server.
func BaseModelID(name string) string {
	h := sha256.Sum256([]byte("gantry-base-model\x00" + name))
	return "ocid1.generativeaimodel.oc1..base" + hex.EncodeToString(h[:20])
}

// maxCatalogFile bounds config.json and gantry.json reads.
const maxCatalogFile = 1 << 20

// LoadCatalog reads every DATA/base-models/NAME/config.json (and its
// gantry.json). A directory whose files are unreadable or invalid is
// skipped with a warning naming it, so one bad model does not stop the
// server.
func LoadCatalog(dataDir string, log *slog.Logger) (*Catalog, error) {
	c := &Catalog{byID: map[string]*BaseModel{}, byName: map[string]*BaseModel{}}
	root := filepath.Join(dataDir, BaseModelsDir)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read catalog %s: %w", root, err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		bm, err := loadBaseModel(filepath.Join(root, e.Name()), e.Name())
		if err != nil {
			log.Warn("skipping base model directory", "dir", filepath.Join(root, e.Name()), "err", err)
			continue
		}
		c.byID[bm.Model.ID] = bm
		c.byName[e.Name()] = bm
	}
	return c, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCatalogFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxCatalogFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCatalogFile)
	}
	return b, nil
}

// hfConfig is the part of config.json the catalog reads.
type hfConfig struct {
	ModelType       string `json:"model_type"`
	NumHiddenLayers int    `json:"num_hidden_layers"`
}

// vendorOf maps a model_type to the family shown as the default vendor.
func vendorOf(modelType string) string {
	switch modelType {
	case "llama", "mistral", "qwen2":
		return modelType
	case "":
		return "unknown"
	}
	return modelType
}

func loadBaseModel(dir, name string) (*BaseModel, error) {
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := readSmall(cfgPath)
	if err != nil {
		return nil, err
	}
	var cfg hfConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", cfgPath, err)
	}
	if cfg.NumHiddenLayers < 1 || cfg.NumHiddenLayers > 10000 {
		return nil, fmt.Errorf("%s: num_hidden_layers %d is not a layer count", cfgPath, cfg.NumHiddenLayers)
	}
	var spec BaseModelSpec
	specPath := filepath.Join(dir, CatalogFile)
	if b, err := readSmall(specPath); err == nil {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return nil, fmt.Errorf("parse %s: %w", specPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, c := range spec.Capabilities {
		switch c {
		case core.CapabilityTextGeneration, core.CapabilityTextSummarization, core.CapabilityTextEmbeddings,
			core.CapabilityFineTune, core.CapabilityChat, core.CapabilityTextRerank:
		default:
			return nil, fmt.Errorf("%s: capability %q is not a model capability", specPath, c)
		}
	}
	st, err := os.Stat(cfgPath)
	if err != nil {
		return nil, err
	}
	created := st.ModTime().UTC().Truncate(time.Millisecond)
	m := &core.Model{
		ID:                  BaseModelID(name),
		DisplayName:         name,
		Vendor:              vendorOf(cfg.ModelType),
		Version:             "1",
		Type:                core.ModelTypeBase,
		Capabilities:        []string{core.CapabilityFineTune, core.CapabilityTextGeneration, core.CapabilityChat},
		LifecycleState:      core.ModelActive,
		IsLongTermSupported: true,
		TimeCreated:         created,
		TimeUpdated:         created,
		FreeformTags:        map[string]string{},
		DefinedTags:         map[string]map[string]any{},
	}
	if spec.DisplayName != "" {
		m.DisplayName = spec.DisplayName
	}
	if spec.Vendor != "" {
		m.Vendor = spec.Vendor
	}
	if spec.Version != "" {
		m.Version = spec.Version
	}
	if spec.Capabilities != nil {
		m.Capabilities = spec.Capabilities
	}
	if spec.IsLongTermSupported != nil {
		m.IsLongTermSupported = *spec.IsLongTermSupported
	}
	if spec.TimeDeprecated != nil {
		t := spec.TimeDeprecated.UTC()
		m.TimeDeprecated = &t
	}
	return &BaseModel{Model: m, Dir: dir, NumLayers: cfg.NumHiddenLayers}, nil
}

// Reload reads the catalog of dataDir again (as LoadCatalog does) and
// replaces c's entries with it. Worker-only processes call it when a job
// names a base model they do not know: the API server may have installed
// it after they started (on a shared DATA/base-models).
func (c *Catalog) Reload(dataDir string, log *slog.Logger) error {
	n, err := LoadCatalog(dataDir, log)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID, c.byName = n.byID, n.byName
	return nil
}

// Len returns the number of base models.
func (c *Catalog) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byID)
}

// Get returns the base model with the OCID id.
func (c *Catalog) Get(id string) (*BaseModel, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	bm, ok := c.byID[id]
	return bm, ok
}

// NumLayers returns a base model's layer count.
func (c *Catalog) NumLayers(id string) (int, bool) {
	bm, ok := c.Get(id)
	if !ok {
		return 0, false
	}
	return bm.NumLayers, true
}

// Models returns the base models sorted by name.
func (c *Catalog) Models() []*BaseModel {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*BaseModel, 0, len(names))
	for _, n := range names {
		out = append(out, c.byName[n])
	}
	return out
}

// Sync upserts every base model into the store, and marks DELETED the
// stored base models whose directory is gone, so they are no longer
// listed or fine-tuned (a custom model keeps its baseModelId).
func (c *Catalog) Sync(ctx context.Context, st store.Models) error {
	for _, bm := range c.Models() {
		m := *bm.Model
		if err := st.UpsertBaseModel(ctx, &m); err != nil {
			return fmt.Errorf("upsert base model %s: %w", bm.Model.DisplayName, err)
		}
	}
	var stale []*core.Model
	q := store.ListQuery{
		// No tenancy has this ID, so only the base models match.
		TenancyID:   "ocid1.tenancy.oc1..none",
		IncludeBase: true,
		Limit:       1000,
	}
	for {
		page, err := st.ListModels(ctx, q)
		if err != nil {
			return fmt.Errorf("list base models: %w", err)
		}
		for _, m := range page.Items {
			if _, ok := c.Get(m.ID); !ok && m.Type == core.ModelTypeBase {
				stale = append(stale, m)
			}
		}
		if page.Next == "" {
			break
		}
		q.Page = page.Next
	}
	for _, m := range stale {
		m.LifecycleState = core.ModelDeleted
		m.LifecycleDetails = "the base model's directory is no longer in the catalog"
		m.TimeUpdated = time.Now().UTC()
		if err := st.UpsertBaseModel(ctx, m); err != nil {
			return fmt.Errorf("retire base model %s: %w", m.DisplayName, err)
		}
	}
	return nil
}
