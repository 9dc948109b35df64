package tensor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// GemmBench describes one SGEMM throughput measurement; the zero values of
// Iters and Config mean 10 and Default().
type GemmBench struct {
	M, N, K        int
	TransA, TransB bool
	Iters          int
	Config         Config
}

// GemmResult is what RunGemmBench measured. GFLOPS is 2·M·N·K divided by
// the best of the timed iterations; Seconds is that best time and
// MedianSeconds the median.
type GemmResult struct {
	M             int     `json:"m"`
	N             int     `json:"n"`
	K             int     `json:"k"`
	TransA        bool    `json:"transa"`
	TransB        bool    `json:"transb"`
	Threads       int     `json:"threads"`
	Kernel        string  `json:"kernel"`
	Iters         int     `json:"iters"`
	GFLOPS        float64 `json:"gflops"`
	MedianGFLOPS  float64 `json:"median_gflops"`
	PeakGFLOPS    float64 `json:"peak_gflops"`
	Seconds       float64 `json:"seconds"`
	MedianSeconds float64 `json:"median_seconds"`
}

// maxBenchElems bounds each operand of a benchmark (1<<30 floats, 4 GiB).
const maxBenchElems = 1 << 30

// RunGemmBench times g.Iters products of random matrices after one warm-up
// product, and measures the FMA peak with the same kernel and threads. It
// stops early, returning ctx's error, when ctx is done.
func RunGemmBench(ctx context.Context, g GemmBench) (GemmResult, error) {
	if g.M <= 0 || g.N <= 0 || g.K <= 0 {
		return GemmResult{}, fmt.Errorf("gemm bench: m, n, k must be positive, got %d, %d, %d", g.M, g.N, g.K)
	}
	for _, d := range [][2]int{{g.M, g.K}, {g.K, g.N}, {g.M, g.N}} {
		if d[0] > maxBenchElems/d[1] {
			return GemmResult{}, fmt.Errorf("gemm bench: operand of %d×%d is over %d elements", d[0], d[1], maxBenchElems)
		}
	}
	if g.Iters <= 0 {
		g.Iters = 10
	}
	cfg := g.Config.Resolve()
	r := rand.New(rand.NewPCG(1, 2))
	a := randomFloats(r, g.M*g.K)
	b := randomFloats(r, g.K*g.N)
	c := make([]float32, g.M*g.N)
	lda, ldb := g.K, g.N
	if g.TransA {
		lda = g.M
	}
	if g.TransB {
		ldb = g.K
	}
	times := make([]float64, 0, g.Iters)
	for i := -1; i < g.Iters; i++ {
		if err := ctx.Err(); err != nil {
			return GemmResult{}, err
		}
		start := time.Now()
		cfg.Sgemm(g.TransA, g.TransB, g.M, g.N, g.K, 1, a, lda, b, ldb, 0, c, g.N)
		if i >= 0 {
			times = append(times, time.Since(start).Seconds())
		}
	}
	sortFloats(times)
	flop := 2 * float64(g.M) * float64(g.N) * float64(g.K)
	best, med := times[0], times[len(times)/2]
	return GemmResult{
		M: g.M, N: g.N, K: g.K, TransA: g.TransA, TransB: g.TransB,
		Threads: cfg.Threads, Kernel: cfg.Kernel.String(), Iters: g.Iters,
		GFLOPS: flop / best / 1e9, MedianGFLOPS: flop / med / 1e9,
		PeakGFLOPS: MeasurePeakGFLOPS(cfg.Kernel, cfg.Threads, 300*time.Millisecond),
		Seconds:    best, MedianSeconds: med,
	}, nil
}

func randomFloats(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// sortFloats sorts s ascending (insertion sort: s is a few dozen timings).
func sortFloats(s []float64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
