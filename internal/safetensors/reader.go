// Package safetensors reads and writes the safetensors tensor file format
// (an 8-byte little-endian header length, a JSON header, raw data) and
// Hugging Face's sharded checkpoints (model.safetensors.index.json).
//
// Reading validates the whole header before anything else: a corrupt,
// truncated or hostile file is an error naming the file and the tensor,
// never a panic or an allocation sized by an untrusted field.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"unsafe"
)

// MaxHeaderSize bounds the JSON header; real checkpoints stay far below it.
const MaxHeaderSize = 100 << 20

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("invalid safetensors file")

// ErrDType is wrapped when a tensor's dtype cannot be read as fp32.
var ErrDType = errors.New("unsupported dtype")

// ErrNotFound is wrapped when a tensor name is not in the file.
var ErrNotFound = errors.New("tensor not found")

// TensorInfo describes one tensor of a file. Begin and End are byte
// offsets into the data section (after the header).
type TensorInfo struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is an open safetensors file. Its data is memory-mapped where the
// platform allows (privately: writes to returned slices never reach the
// disk) and read into memory otherwise. Slices returned by Float32 may
// alias the mapping: they stay valid until Close and not after.
type File struct {
	path     string
	data     []byte // the data section
	whole    []byte // the mapping or buffer holding the whole file
	mapped   bool
	tensors  []TensorInfo // sorted by name
	byName   map[string]int
	metadata map[string]string
}

// Open reads and validates path's header and maps its data.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: stat %s: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: %w: %d bytes, shorter than the 8-byte header length", path, ErrFormat, size)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(fh, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: %s: %w: header length %d exceeds the %d-byte limit", path, ErrFormat, n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors: %s: %w: header length %d but the file has only %d bytes after it", path, ErrFormat, n, size-8)
	}
	whole, mapped, err := mapFile(fh, size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: load %s: %w", path, err)
	}
	f := &File{path: path, whole: whole, mapped: mapped, data: whole[8+n:]}
	if err := f.parseHeader(whole[8 : 8+n]); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Parse validates and wraps an in-memory safetensors image; name is used
// in error messages. The returned File aliases buf.
func Parse(name string, buf []byte) (*File, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("safetensors: %s: %w: %d bytes, shorter than the 8-byte header length", name, ErrFormat, len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > MaxHeaderSize || n > uint64(len(buf)-8) {
		return nil, fmt.Errorf("safetensors: %s: %w: header length %d but the file has only %d bytes after it", name, ErrFormat, n, len(buf)-8)
	}
	f := &File{path: name, whole: buf, data: buf[8+n:]}
	if err := f.parseHeader(buf[8 : 8+n]); err != nil {
		return nil, err
	}
	return f, nil
}

// rawEntry is one tensor's header entry before validation.
type rawEntry struct {
	DType       string        `json:"dtype"`
	Shape       []json.Number `json:"shape"`
	DataOffsets []json.Number `json:"data_offsets"`
}

func (f *File) errorf(tensor, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if tensor != "" {
		return fmt.Errorf("safetensors: %s: tensor %q: %w: %s", f.path, tensor, ErrFormat, msg)
	}
	return fmt.Errorf("safetensors: %s: %w: %s", f.path, ErrFormat, msg)
}

// parseHeader decodes the JSON header, rejecting duplicate names, unknown
// dtypes, sizes that disagree with offsets, and out-of-range or
// overlapping data.
func (f *File) parseHeader(hdr []byte) error {
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimRight(hdr, " \x00")))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return f.errorf("", "header is not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return f.errorf("", "header is not a JSON object")
	}
	f.byName = map[string]int{}
	dataLen := int64(len(f.data))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f.errorf("", "header is not JSON: %v", err)
		}
		name, _ := tok.(string)
		if name == "__metadata__" {
			if f.metadata != nil {
				return f.errorf("", "duplicate __metadata__")
			}
			var md map[string]string
			if err := dec.Decode(&md); err != nil {
				return f.errorf("", "__metadata__ is not an object of strings: %v", err)
			}
			if md == nil {
				md = map[string]string{}
			}
			f.metadata = md
			continue
		}
		if _, dup := f.byName[name]; dup {
			return f.errorf(name, "duplicate tensor name")
		}
		var e rawEntry
		if err := dec.Decode(&e); err != nil {
			return f.errorf(name, "bad header entry: %v", err)
		}
		t, err := f.validateEntry(name, e, dataLen)
		if err != nil {
			return err
		}
		f.byName[name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return f.errorf("", "header is not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return f.errorf("", "trailing data after the header's JSON object")
	}
	// Overlap check over the data ranges in offset order.
	order := make([]int, len(f.tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ta, tb := f.tensors[order[a]], f.tensors[order[b]]
		if ta.Begin != tb.Begin {
			return ta.Begin < tb.Begin
		}
		return ta.End < tb.End
	})
	var prev *TensorInfo
	for _, i := range order {
		t := &f.tensors[i]
		if t.Begin == t.End {
			continue
		}
		if prev != nil && t.Begin < prev.End {
			return f.errorf(t.Name, "data [%d, %d) overlaps tensor %q's [%d, %d)", t.Begin, t.End, prev.Name, prev.Begin, prev.End)
		}
		prev = t
	}
	sort.Slice(f.tensors, func(a, b int) bool { return f.tensors[a].Name < f.tensors[b].Name })
	for i, t := range f.tensors {
		f.byName[t.Name] = i
	}
	return nil
}

func (f *File) validateEntry(name string, e rawEntry, dataLen int64) (TensorInfo, error) {
	t := TensorInfo{Name: name, DType: DType(e.DType)}
	size := t.DType.Size()
	if size == 0 {
		return t, f.errorf(name, "unknown dtype %q", e.DType)
	}
	if len(e.Shape) > 16 {
		return t, f.errorf(name, "%d dimensions", len(e.Shape))
	}
	bytesNeeded := uint64(size)
	for _, s := range e.Shape {
		d, err := strconv.ParseUint(s.String(), 10, 63)
		if err != nil {
			return t, f.errorf(name, "bad dimension %s", s)
		}
		t.Shape = append(t.Shape, int(d))
		if d != 0 && bytesNeeded > math.MaxInt64/d {
			return t, f.errorf(name, "shape %v is too large", t.Shape)
		}
		bytesNeeded *= d
	}
	if t.Shape == nil {
		t.Shape = []int{}
	}
	if len(e.DataOffsets) != 2 {
		return t, f.errorf(name, "data_offsets has %d values, want 2", len(e.DataOffsets))
	}
	var off [2]int64
	for i, s := range e.DataOffsets {
		v, err := strconv.ParseUint(s.String(), 10, 63)
		if err != nil {
			return t, f.errorf(name, "bad data offset %s", s)
		}
		off[i] = int64(v)
	}
	t.Begin, t.End = off[0], off[1]
	if t.Begin > t.End {
		return t, f.errorf(name, "data_offsets [%d, %d) run backwards", t.Begin, t.End)
	}
	if t.End > dataLen {
		return t, f.errorf(name, "data_offsets [%d, %d) run past the %d-byte data section", t.Begin, t.End, dataLen)
	}
	if uint64(t.End-t.Begin) != bytesNeeded {
		return t, f.errorf(name, "shape %v of %s needs %d bytes but data_offsets [%d, %d) hold %d", t.Shape, t.DType, bytesNeeded, t.Begin, t.End, t.End-t.Begin)
	}
	return t, nil
}

// Path returns the file's path as given to Open.
func (f *File) Path() string { return f.path }

// Mapped reports whether the data is memory-mapped rather than read.
func (f *File) Mapped() bool { return f.mapped }

// Metadata returns the header's __metadata__ (nil when absent).
func (f *File) Metadata() map[string]string { return f.metadata }

// Tensors returns the descriptions of all tensors, sorted by name.
func (f *File) Tensors() []TensorInfo { return f.tensors }

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// Raw returns the named tensor's bytes as stored (little-endian). The
// slice aliases the file's data.
func (f *File) Raw(name string) ([]byte, TensorInfo, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, t, fmt.Errorf("safetensors: %s: %w: %q", f.path, ErrNotFound, name)
	}
	return f.data[t.Begin:t.End:t.End], t, nil
}

// Float32 returns the named tensor's values as fp32, converting F16 and
// BF16. An F32 tensor of a mapped file whose data is 4-byte aligned is
// returned without copying: the slice aliases the private mapping (safe to
// modify; the file is never written) and is valid until Close.
func (f *File) Float32(name string) ([]float32, TensorInfo, error) {
	raw, t, err := f.Raw(name)
	if err != nil {
		return nil, t, err
	}
	if !t.DType.Supported() {
		return nil, t, fmt.Errorf("safetensors: %s: tensor %q: %w %s (want F32, F16 or BF16)", f.path, name, ErrDType, t.DType)
	}
	n := t.NumElements()
	if n == 0 {
		return []float32{}, t, nil
	}
	if t.DType == F32 && littleEndian && uintptr(unsafe.Pointer(&raw[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), n), t, nil
	}
	out := make([]float32, n)
	decodeF32(out, raw, t.DType)
	return out, t, nil
}

// Close releases the mapping. Slices returned by Float32 or Raw must not
// be used afterwards.
func (f *File) Close() error {
	if f.whole == nil {
		return nil
	}
	var err error
	if f.mapped {
		err = unmap(f.whole)
	}
	f.whole, f.data = nil, nil
	return err
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
