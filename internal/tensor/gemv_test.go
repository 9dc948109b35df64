package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestGemv checks every kernel against a float64 reference over shapes
// that exercise every tail (rows not a multiple of 4, in around the 16-
// and 32-float steps), with and without beta, and that the result does
// not depend on the thread count or on which rows are computed together.
func TestGemv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][2]int{{1, 1}, {1, 15}, {3, 16}, {4, 17}, {5, 31}, {7, 32}, {9, 33}, {13, 47}, {64, 48}, {70, 64},
		{131, 100}, {576, 576}, {1000, 1536}, {3, 0}}
	for _, k := range AvailableKernels() {
		for _, s := range shapes {
			out, in := s[0], s[1]
			W, x, y0 := randSlice(r, out*in), randSlice(r, in), randSlice(r, out)
			for _, beta := range []float32{0, 0.5} {
				var first []float32
				for _, threads := range []int{1, 2, 3, 8} {
					y := append([]float32(nil), y0...)
					Config{Kernel: k, Threads: threads}.Gemv(y, W, x, out, in, beta)
					for j := 0; j < out; j++ {
						var want, abs float64
						for i := 0; i < in; i++ {
							p := float64(W[j*in+i]) * float64(x[i])
							want += p
							abs += math.Abs(p)
						}
						want += float64(beta) * float64(y0[j])
						abs += math.Abs(float64(beta) * float64(y0[j]))
						if d := math.Abs(float64(y[j]) - want); d > 1e-6*abs+1e-30 {
							t.Fatalf("%v %dx%d beta=%v threads=%d: y[%d]=%v, want %v", k, out, in, beta, threads, j, y[j], want)
						}
					}
					if first == nil {
						first = y
						continue
					}
					for j := range y {
						if math.Float32bits(y[j]) != math.Float32bits(first[j]) {
							t.Fatalf("%v %dx%d: threads=%d y[%d]=%v, threads=1 gave %v", k, out, in, threads, j, y[j], first[j])
						}
					}
				}
				// Each row alone gives the value it has among the others.
				for j := 0; j < out; j++ {
					one := []float32{y0[j]}
					Config{Kernel: k, Threads: 1}.Gemv(one, W[j*in:(j+1)*in], x, 1, in, beta)
					if math.Float32bits(one[0]) != math.Float32bits(first[j]) {
						t.Fatalf("%v %dx%d: row %d alone %v, among the rows %v", k, out, in, j, one[0], first[j])
					}
				}
			}
		}
	}
}

func TestGemvBadArgsPanic(t *testing.T) {
	cases := []struct {
		name      string
		y, W, x   int
		out, in   int
		wantInMsg string
	}{
		{"negative", 1, 1, 1, -1, 1, "negative"},
		{"overflow", 1, 1, 1, math.MaxInt / 2, 3, "overflows"},
		{"short W", 2, 3, 2, 2, 2, "len(W)"},
		{"short x", 2, 4, 1, 2, 2, "len(x)"},
		{"short y", 1, 4, 2, 2, 2, "len(y)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), c.wantInMsg) {
					t.Fatalf("recover() = %v, want a panic naming %q", r, c.wantInMsg)
				}
			}()
			Gemv(make([]float32, c.y), make([]float32, c.W), make([]float32, c.x), c.out, c.in, 0)
		})
	}
}

// BenchmarkGemv reports the bytes of W read per second at the decode
// shapes of smollm2-135m.
func BenchmarkGemv(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][2]int{{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}} {
		out, in := s[0], s[1]
		W, x, y := randSlice(r, out*in), randSlice(r, in), make([]float32, out)
		for _, k := range AvailableKernels() {
			b.Run(fmt.Sprintf("%dx%d/%v", out, in, k), func(b *testing.B) {
				b.SetBytes(int64(4 * out * in))
				for b.Loop() {
					Config{Kernel: k}.Gemv(y, W, x, out, in, 0)
				}
			})
		}
	}
}

// BenchmarkStreamRead measures memory read bandwidth: Gemv over a 1 GiB
// matrix (more than three times this machine's 300 MiB L3), so every byte
// of W comes from DRAM once per op, as the weights do at decode time.
// Compare its MB/s with the bytes of weights a decode step reads.
func BenchmarkStreamRead(b *testing.B) {
	const in = 4096
	const out = (1 << 30) / 4 / in
	W := make([]float32, out*in)
	for i := range W {
		W[i] = float32(i & 7)
	}
	x, y := make([]float32, in), make([]float32, out)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("1GiB/threads=%d", threads), func(b *testing.B) {
			b.SetBytes(int64(4 * out * in))
			for b.Loop() {
				Config{Threads: threads}.Gemv(y, W, x, out, in, 0)
			}
		})
	}
}

// TestGemvBatch checks that each vector of a batch gets exactly what
// Gemv gives it alone, for every kernel, batch size and thread count.
func TestGemvBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, k := range AvailableKernels() {
		for _, s := range [][2]int{{1, 1}, {5, 15}, {7, 16}, {9, 33}, {70, 64}, {131, 100}, {576, 576}, {200, 1536}, {3, 0}} {
			out, in := s[0], s[1]
			W := randSlice(r, out*in)
			for nv := 0; nv <= 6; nv++ {
				x, y0 := randSlice(r, nv*in), randSlice(r, nv*out)
				for _, beta := range []float32{0, 1} {
					want := append([]float32(nil), y0...)
					for v := 0; v < nv; v++ {
						Config{Kernel: k, Threads: 1}.Gemv(want[v*out:(v+1)*out], W, x[v*in:(v+1)*in], out, in, beta)
					}
					for _, threads := range []int{1, 2, 5} {
						y := append([]float32(nil), y0...)
						Config{Kernel: k, Threads: threads}.GemvBatch(y, W, x, nv, out, in, beta)
						for i := range y {
							if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%v %dx%d nv=%d beta=%v threads=%d: y[%d]=%v, Gemv alone gives %v", k, out, in, nv, beta, threads, i, y[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

func TestGemvBatchBadArgsPanic(t *testing.T) {
	cases := []struct {
		name        string
		y, W, x     int
		nv, out, in int
		wantInPanic string
	}{
		{"negative", 1, 1, 1, -1, 1, 1, "negative"},
		{"overflow", 1, 1, 1, 1, math.MaxInt / 2, 3, "overflow"},
		{"short W", 4, 3, 4, 2, 2, 2, "len(W)"},
		{"short x", 4, 4, 3, 2, 2, 2, "len(x)"},
		{"short y", 3, 4, 4, 2, 2, 2, "len(y)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), c.wantInPanic) {
					t.Fatalf("recover() = %v, want a panic naming %q", r, c.wantInPanic)
				}
			}()
			GemvBatch(make([]float32, c.y), make([]float32, c.W), make([]float32, c.x), c.nv, c.out, c.in, 0)
		})
	}
}

// BenchmarkGemvBatch compares four tokens through GemvBatch (W read once)
// with four Gemv calls, at the q projection and LM-head shapes.
func BenchmarkGemvBatch(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][2]int{{576, 576}, {1536, 576}, {49152, 576}} {
		out, in := s[0], s[1]
		const nv = 4
		W, x, y := randSlice(r, out*in), randSlice(r, nv*in), make([]float32, nv*out)
		b.Run(fmt.Sprintf("%dx%d/batch4", out, in), func(b *testing.B) {
			for b.Loop() {
				GemvBatch(y, W, x, nv, out, in, 0)
			}
		})
		b.Run(fmt.Sprintf("%dx%d/4xGemv", out, in), func(b *testing.B) {
			for b.Loop() {
				for v := 0; v < nv; v++ {
					Gemv(y[v*out:(v+1)*out], W, x[v*in:(v+1)*in], out, in, 0)
				}
			}
		})
	}
}
