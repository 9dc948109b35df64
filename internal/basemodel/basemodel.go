// Package basemodel is Gantry's built-in default base model, embedded in
// the binary so that a fresh server can fine-tune without downloading
// anything: a 0.85M-parameter Llama model over the built-in byte-level
// vocabulary, pretrained by `gantry pretrain` on Moby-Dick chapters 1–40
// (examples/corpus). README.md beside this file records how it was made.
package basemodel

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// DisplayName is the base model's display name in the catalog.
const DisplayName = "gantry-base-moby"

// files holds the model directory written by `gantry pretrain`.
//
//go:embed model
var files embed.FS

// modelDir is the directory of the model files inside files.
const modelDir = "model"

// FS returns the model directory (config.json, model.safetensors,
// tokenizer files, pretrain.json) as a read-only file system.
func FS() fs.FS {
	sub, err := fs.Sub(files, modelDir)
	if err != nil {
		panic(fmt.Sprintf("basemodel: embedded files: %v", err)) // static data: cannot fail
	}
	return sub
}

// Spec is the catalog description Install writes as gantry.json: the
// server's BaseModelSpec fields.
type Spec struct {
	DisplayName  string   `json:"displayName"`
	Vendor       string   `json:"vendor"`
	Version      string   `json:"version"`
	Capabilities []string `json:"capabilities"`
}

// DefaultSpec describes the model: a text-generation model (it has not
// learnt a chat format) that can be fine-tuned.
func DefaultSpec() Spec {
	return Spec{DisplayName: DisplayName, Vendor: "gantry", Version: "1", Capabilities: []string{"FINE_TUNE", "TEXT_GENERATION"}}
}

// CatalogFile is the name of the catalog description in a base model
// directory (the server's server.CatalogFile).
const CatalogFile = "gantry.json"

// Install writes the model into dir (created when missing) as a Hugging
// Face model directory with a gantry.json from DefaultSpec, ready for the
// server's catalog: its signature matches server.Config's
// InstallDefaultBaseModel. Existing files of the same names are replaced.
func Install(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install base model: %w", err)
	}
	ents, err := fs.ReadDir(files, modelDir)
	if err != nil {
		return fmt.Errorf("install base model: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			continue
		}
		b, err := files.ReadFile(path.Join(modelDir, e.Name()))
		if err != nil {
			return fmt.Errorf("install base model: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return fmt.Errorf("install base model: %w", err)
		}
	}
	spec, _ := json.MarshalIndent(DefaultSpec(), "", "  ")
	if err := os.WriteFile(filepath.Join(dir, CatalogFile), append(spec, '\n'), 0o644); err != nil {
		return fmt.Errorf("install base model: %w", err)
	}
	return nil
}
