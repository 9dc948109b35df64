package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	a := []float32{1, -2.5, 3.25, 0, 1e-3, 65504}
	ts := []Tensor{
		{Name: "b.weight", DType: F32, Shape: []int{2, 3}, Data: a},
		{Name: "a.half", DType: F16, Shape: []int{6}, Data: a},
		{Name: "c.bf", DType: BF16, Shape: []int{3, 2}, Fill: func(dst []float32) error { copy(dst, a); return nil }},
		{Name: "scalar", Shape: nil, Data: []float32{7}},
	}
	md := map[string]string{"format": "pt"}
	if err := WriteFile(path, ts, md); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if err := WriteFile(path, ts, md); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Fatal("WriteFile is not deterministic")
	}
	if hl := binary.LittleEndian.Uint64(first); (8+hl)%8 != 0 {
		t.Fatalf("header length %d leaves data unaligned", hl)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Mapped() {
		t.Log("file was read, not mapped")
	}
	if f.Metadata()["format"] != "pt" {
		t.Fatalf("metadata = %v", f.Metadata())
	}
	tests := []struct {
		name  string
		dtype DType
		tol   float64
	}{{"b.weight", F32, 0}, {"a.half", F16, 1e-3}, {"c.bf", BF16, 1e-2}}
	for _, tc := range tests {
		got, info, err := f.Float32(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if info.DType != tc.dtype || len(got) != len(a) {
			t.Fatalf("%s: dtype %s len %d", tc.name, info.DType, len(got))
		}
		for i := range a {
			if d := math.Abs(float64(got[i] - a[i])); d > tc.tol*math.Max(1, math.Abs(float64(a[i]))) {
				t.Errorf("%s[%d] = %v, want %v", tc.name, i, got[i], a[i])
			}
		}
	}
	got, _, err := f.Float32("b.weight")
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 42 // private mapping: must not reach the file
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("modifying a mapped tensor changed the file")
	}
	if s, _, _ := f.Float32("scalar"); len(s) != 1 || s[0] != 7 {
		t.Fatalf("scalar = %v", s)
	}
	if _, _, err := f.Float32("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing tensor: %v", err)
	}
}

func TestConversions(t *testing.T) {
	tests := []struct {
		f    float32
		f16  uint16
		bf16 uint16
	}{
		{0, 0, 0},
		{1, 0x3c00, 0x3f80},
		{-2, 0xc000, 0xc000},
		{65504, 0x7bff, 0x4780},
		{1e6, 0x7c00, 0x4974},
		{float32(math.Inf(-1)), 0xfc00, 0xff80},
		{5.960464477539063e-08, 0x0001, 0x3380}, // smallest half subnormal
		{6.103515625e-05, 0x0400, 0x3880},       // smallest half normal
		{1.00048828125, 0x3c00, 0x3f80},         // tie in half: rounds to even
	}
	for _, tc := range tests {
		if got := F32ToF16(tc.f); got != tc.f16 {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.f, got, tc.f16)
		}
		if got := F32ToBF16(tc.f); got != tc.bf16 {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", tc.f, got, tc.bf16)
		}
	}
	// Every finite half survives a round trip through float32.
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f {
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, back)
		}
	}
	if v := F32ToBF16(float32(math.NaN())); BF16ToF32(v) == BF16ToF32(v) {
		t.Fatal("NaN did not stay NaN")
	}
}

// image builds a raw file from a header string and a data length.
func image(header string, dataLen int) []byte {
	b := make([]byte, 8+len(header)+dataLen)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	copy(b[8:], header)
	return b
}

func TestCorrupt(t *testing.T) {
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	long := make([]byte, 16)
	binary.LittleEndian.PutUint64(long, 1000)
	tests := []struct {
		name string
		data []byte
		want string // substring of the error
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"absurd header length", huge, "header length"},
		{"header past end", long, "header length 1000"},
		{"not json", image("hello world", 0), "not JSON"},
		{"not an object", image(`[1,2]`, 0), "not a JSON object"},
		{"unknown dtype", image(`{"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}`, 4), `tensor "w"`},
		{"offsets past end", image(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "run past"},
		{"size mismatch", image(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12 bytes"},
		{"backwards", image(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, 8), "backwards"},
		{"overlap", image(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), "overlaps"},
		{"duplicate", image(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "duplicate"},
		{"negative dim", image(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "bad dimension"},
		{"overflowing shape", image(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "too large"},
		{"huge number", image(`{"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}}`, 4), "a"},
		{"bad offsets", image(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), "data_offsets has 1"},
		{"trailing", image(`{} {}`, 0), "trailing"},
		{"bad metadata", image(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %q and the file", err, tc.want)
			}
			if _, err := Parse("mem", tc.data); err == nil {
				t.Fatal("Parse: no error")
			}
		})
	}
}

func TestUnsupportedDType(t *testing.T) {
	f, err := Parse("mem", image(`{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.Float32("ids")
	if !errors.Is(err, ErrDType) || !strings.Contains(err.Error(), "I64") {
		t.Fatalf("err = %v", err)
	}
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []Tensor{{Name: "b", Shape: []int{1}, Data: []float32{2}}}, nil); err != nil {
		t.Fatal(err)
	}
	idx := `{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(idx), 0o644)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := s.Float32("b")
	if err != nil || v[0] != 2 {
		t.Fatalf("b = %v, %v", v, err)
	}
	if got := s.Names(); len(got) != 2 {
		t.Fatalf("names %v", got)
	}
	s.Close()

	for _, bad := range []string{
		`{"weight_map":{"a":"../x.safetensors"}}`,
		`{"weight_map":{"c":"model-00001-of-00002.safetensors"}}`,
		`{"weight_map":{}}`,
		`not json`,
	} {
		os.WriteFile(filepath.Join(dir, IndexFile), []byte(bad), 0o644)
		if s, err := OpenDir(dir); err == nil {
			s.Close()
			t.Errorf("index %s: no error", bad)
		}
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.safetensors")
	WriteFile(path, []Tensor{
		{Name: "x", DType: F32, Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}},
		{Name: "y", DType: BF16, Shape: []int{3}, Data: []float32{1, 2, 3}},
	}, map[string]string{"k": "v"})
	seed, _ := os.ReadFile(path)
	buf.Write(seed)
	f.Add(buf.Bytes())
	f.Add(image(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 4))
	f.Add(image(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors() {
			v, _, err := file.Float32(ti.Name)
			if err == nil && len(v) != ti.NumElements() {
				t.Fatalf("%s: %d values for shape %v", ti.Name, len(v), ti.Shape)
			}
		}
	})
}

func TestLargeTensorChunks(t *testing.T) {
	n := 600_001 // spans several encoding chunks
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%256) / 8
	}
	for _, dt := range []DType{F32, BF16, F16} {
		path := filepath.Join(t.TempDir(), "big.safetensors")
		if err := WriteFile(path, []Tensor{{Name: "w", DType: dt, Shape: []int{n}, Data: v}}, nil); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := f.Float32("w")
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			if got[i] != v[i] { // k/8 for k < 256 needs 8 significant bits: exact in all three
				t.Fatalf("%s: [%d] = %g, want %g", dt, i, got[i], v[i])
			}
		}
		f.Close()
	}
}
