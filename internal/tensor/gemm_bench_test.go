package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchShapes are the products of a smollm2-135m training step at batch
// 8 × seq 256 (2048 rows), forward and backward, plus the square 1024³.
var benchShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{"sq1024", false, false, 1024, 1024, 1024},
	{"q_fwd", false, true, 2048, 576, 576},     // x·Wqᵀ
	{"kv_fwd", false, true, 2048, 192, 576},    // x·Wkᵀ
	{"up_fwd", false, true, 2048, 1536, 576},   // x·Wupᵀ
	{"down_fwd", false, true, 2048, 576, 1536}, // h·Wdownᵀ
	{"lm_fwd", false, true, 2048, 49152, 576},  // x·Eᵀ
	{"q_dx", false, false, 2048, 576, 576},     // dy·Wq
	{"down_dx", false, false, 2048, 1536, 576}, // dy·Wdown
	{"up_dx", false, false, 2048, 576, 1536},   // dy·Wup
	{"lm_dx", false, false, 2048, 576, 49152},  // dlogits·E
	{"q_dw", true, false, 576, 576, 2048},      // dyᵀ·x
	{"kv_dw", true, false, 192, 576, 2048},
	{"up_dw", true, false, 1536, 576, 2048},
	{"down_dw", true, false, 576, 1536, 2048},
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes {
		for _, k := range AvailableKernels() {
			if k == KernelGeneric && s.m*s.n*s.k > 1<<30 {
				continue
			}
			b.Run(fmt.Sprintf("%s/%v", s.name, k), func(b *testing.B) {
				benchGemm(b, Config{Kernel: k}, s.transA, s.transB, s.m, s.n, s.k)
			})
		}
	}
}

func benchGemm(b *testing.B, cfg Config, transA, transB bool, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 2))
	a := randSlice(r, m*k)
	bm := randSlice(r, k*n)
	c := make([]float32, m*n)
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	b.ResetTimer()
	for b.Loop() {
		cfg.Sgemm(transA, transB, m, n, k, 1, a, lda, bm, ldb, 0, c, n)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkSgemmBF16(b *testing.B) {
	for _, s := range benchShapes {
		if s.name != "sq1024" && s.name != "q_fwd" && s.name != "up_fwd" && s.name != "down_fwd" {
			continue
		}
		for _, k := range AvailableKernels() {
			if k == KernelGeneric {
				continue
			}
			b.Run(fmt.Sprintf("%s/%v", s.name, k), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				m, n, kk := s.m, s.n, s.k
				a := randSlice(r, m*kk)
				bw := make([]uint16, kk*n)
				ToBF16Slice(bw, randSlice(r, kk*n))
				c := make([]float32, m*n)
				ldb := n
				if s.transB {
					ldb = kk
				}
				cfg := Config{Kernel: k}
				for b.Loop() {
					cfg.SgemmBF16(false, s.transB, m, n, kk, 1, a, kk, bw, ldb, 0, c, n)
				}
				b.ReportMetric(2*float64(m)*float64(n)*float64(kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
