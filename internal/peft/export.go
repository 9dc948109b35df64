package peft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/safetensors"
)

// ExportOptions say how Export writes the merged model.
type ExportOptions struct {
	// DType of the written weights: F32, F16 or BF16; "" keeps the base
	// checkpoint's most common dtype.
	DType safetensors.DType
}

// weightFile reports whether a base model file is a weight file that
// Export replaces rather than copies.
func weightFile(name string) bool {
	for _, suf := range []string{".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pt", ".pth", ".gguf", ".msgpack", ".h5", ".ckpt"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// torchDTypes names safetensors dtypes as config.json's torch_dtype does.
var torchDTypes = map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}

// Export merges the adapter in adapterDir into the base model in baseDir
// and writes a complete Hugging Face model directory to outDir: every
// non-weight file of the base (config.json with torch_dtype updated,
// tokenizer and generation files) copied, and the merged weights as
// model.safetensors. outDir must not exist or be empty; the directory is
// assembled beside it and renamed into place, so a failed export leaves
// nothing behind.
func Export(ctx context.Context, baseDir, adapterDir, outDir string, opt ExportOptions) (err error) {
	if entries, err := os.ReadDir(outDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("export: %s exists and is not empty", outDir)
	}
	a, err := Load(adapterDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	m, err := model.Load(baseDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer m.Close()
	if err := a.Merge(&m.Config, &m.Weights); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	dtype := opt.DType
	if dtype == "" {
		best := 0
		for d, n := range m.DTypes {
			if n > best || (n == best && d < string(dtype)) {
				dtype, best = safetensors.DType(d), n
			}
		}
		if !dtype.Supported() {
			dtype = safetensors.F32
		}
	}
	if _, ok := torchDTypes[dtype]; !ok {
		return fmt.Errorf("export: dtype %q: want F32, F16 or BF16", dtype)
	}

	parent := filepath.Dir(filepath.Clean(outDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(outDir)+".tmp")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}

	entries, err := os.ReadDir(baseDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || weightFile(name) || strings.HasPrefix(name, ".") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == "config.json" {
			if err := writeConfig(filepath.Join(baseDir, name), filepath.Join(tmp, name), torchDTypes[dtype]); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			continue
		}
		if err := copyFile(filepath.Join(baseDir, name), filepath.Join(tmp, name)); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}

	var ts []safetensors.Tensor
	for _, name := range model.TensorNames(&m.Config) {
		data, shape, err := hfTensor(&m.Config, &m.Weights, name)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: dtype, Shape: shape, Data: data})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, safetensors.SingleFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Remove(outDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp, outDir); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// writeConfig copies config.json with torch_dtype set, keeping numbers
// as written.
func writeConfig(src, dst, torchDType string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var cfg map[string]any
	if err := d.Decode(&cfg); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	cfg["torch_dtype"] = torchDType
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(dst, append(out, '\n'))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
