package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// IndexFile and SingleFile are the names Hugging Face gives a sharded
// checkpoint's index and an unsharded checkpoint.
const (
	IndexFile  = "model.safetensors.index.json"
	SingleFile = "model.safetensors"
)

// Set is a checkpoint's tensors across one or more files.
type Set struct {
	Files  []*File
	byName map[string]*File
}

// OpenDir opens the checkpoint in dir: the shards listed by
// model.safetensors.index.json when it exists, else model.safetensors.
func OpenDir(dir string) (*Set, error) {
	idxPath := filepath.Join(dir, IndexFile)
	b, err := os.ReadFile(idxPath)
	if errors.Is(err, os.ErrNotExist) {
		f, err := Open(filepath.Join(dir, SingleFile))
		if err != nil {
			return nil, err
		}
		return NewSet(f)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w: %v", idxPath, ErrFormat, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: %w: empty weight_map", idxPath, ErrFormat)
	}
	var shards []string
	seen := map[string]bool{}
	for name, shard := range idx.WeightMap {
		if shard == "" || shard != filepath.Base(shard) || strings.HasPrefix(shard, ".") {
			return nil, fmt.Errorf("safetensors: %s: %w: tensor %q maps to %q, not a file in the directory", idxPath, ErrFormat, name, shard)
		}
		if !seen[shard] {
			seen[shard] = true
			shards = append(shards, shard)
		}
	}
	sort.Strings(shards)
	var files []*File
	for _, s := range shards {
		f, err := Open(filepath.Join(dir, s))
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files = append(files, f)
	}
	set, err := NewSet(files...)
	if err != nil {
		return nil, err
	}
	for name, shard := range idx.WeightMap {
		f, ok := set.byName[name]
		if !ok || filepath.Base(f.Path()) != shard {
			set.Close()
			return nil, fmt.Errorf("safetensors: %s: %w: tensor %q is listed in %s but not there", idxPath, ErrFormat, name, shard)
		}
	}
	return set, nil
}

// NewSet groups open files; a tensor name present in two files is an
// error. The Set takes ownership of the files (Close closes them).
func NewSet(files ...*File) (*Set, error) {
	s := &Set{Files: files, byName: map[string]*File{}}
	for _, f := range files {
		for _, t := range f.Tensors() {
			if g, dup := s.byName[t.Name]; dup {
				s.Close()
				return nil, fmt.Errorf("safetensors: %w: tensor %q is in both %s and %s", ErrFormat, t.Name, g.Path(), f.Path())
			}
			s.byName[t.Name] = f
		}
	}
	return s, nil
}

// Names returns every tensor name, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Info describes the named tensor and the file holding it.
func (s *Set) Info(name string) (TensorInfo, *File, bool) {
	f, ok := s.byName[name]
	if !ok {
		return TensorInfo{}, nil, false
	}
	t, _ := f.Info(name)
	return t, f, true
}

// Float32 returns the named tensor as fp32 (see File.Float32).
func (s *Set) Float32(name string) ([]float32, TensorInfo, error) {
	f, ok := s.byName[name]
	if !ok {
		return nil, TensorInfo{}, fmt.Errorf("safetensors: %w: %q", ErrNotFound, name)
	}
	return f.Float32(name)
}

// Close closes every file.
func (s *Set) Close() error {
	var first error
	for _, f := range s.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
