package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Tensor is one tensor to write: values in fp32, row-major, stored on disk
// as DType (F32, F16 or BF16; empty means F32). Either Data holds the
// values, or Fill is called once, when the tensor is written, to produce
// them into a buffer of the right length — so a large file can be written
// holding one tensor in memory at a time.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []float32
	Fill  func(dst []float32) error
}

// WriteFile writes tensors and metadata to path atomically: into a
// temporary file beside it, fsynced, then renamed over path. The output is
// deterministic: tensors are laid out by element size (largest first) and
// then by name, the header's keys are sorted, and the header is padded
// with spaces to a multiple of 8 bytes so every tensor is aligned to its
// element size.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) (err error) {
	ts := make([]Tensor, len(tensors))
	copy(ts, tensors)
	seen := map[string]bool{}
	for i := range ts {
		t := &ts[i]
		if t.DType == "" {
			t.DType = F32
		}
		if !t.DType.Supported() {
			return fmt.Errorf("safetensors: write %s: tensor %q: %w %s", path, t.Name, ErrDType, t.DType)
		}
		if t.Name == "" || t.Name == "__metadata__" || seen[t.Name] {
			return fmt.Errorf("safetensors: write %s: bad or duplicate tensor name %q", path, t.Name)
		}
		seen[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors: write %s: tensor %q: negative dimension in %v", path, t.Name, t.Shape)
			}
			n *= d
		}
		if t.Fill == nil && len(t.Data) != n {
			return fmt.Errorf("safetensors: write %s: tensor %q: shape %v has %d elements but %d values were given", path, t.Name, t.Shape, n, len(t.Data))
		}
	}
	sort.SliceStable(ts, func(a, b int) bool {
		sa, sb := ts[a].DType.Size(), ts[b].DType.Size()
		if sa != sb {
			return sa > sb
		}
		return ts[a].Name < ts[b].Name
	})
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range ts {
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		end := off + n*int64(t.DType.Size())
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": [2]int64{off, end}}
		off = end
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hj)))
	w.Write(lenBuf[:])
	w.Write(hj)
	var raw []byte
	for _, t := range ts {
		vals := t.Data
		if t.Fill != nil {
			n := 1
			for _, d := range t.Shape {
				n *= d
			}
			vals = make([]float32, n)
			if err := t.Fill(vals); err != nil {
				return fmt.Errorf("safetensors: write %s: tensor %q: %w", path, t.Name, err)
			}
		}
		// Encode in chunks so a large tensor needs no second full-size buffer.
		const chunk = 1 << 18
		size := t.DType.Size()
		if raw == nil {
			raw = make([]byte, chunk*4)
		}
		for off := 0; off < len(vals); off += chunk {
			part := vals[off:min(off+chunk, len(vals))]
			encodeF32(raw, part, t.DType)
			if _, err := w.Write(raw[:len(part)*size]); err != nil {
				return fmt.Errorf("safetensors: write %s: %w", path, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: fsync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
