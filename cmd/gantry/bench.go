package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/gantryml/gantry/internal/tensor"
)

// runBenchGemm implements "gantry bench gemm": one SGEMM throughput
// measurement printed as a JSON object.
func runBenchGemm(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry bench gemm", flag.ContinueOnError)
	var g tensor.GemmBench
	fs.IntVar(&g.M, "m", 1024, "rows of op(A) and C")
	fs.IntVar(&g.N, "n", 1024, "columns of op(B) and C")
	fs.IntVar(&g.K, "k", 1024, "columns of op(A), rows of op(B)")
	fs.BoolVar(&g.TransA, "transa", false, "A is stored transposed (k×m)")
	fs.BoolVar(&g.TransB, "transb", false, "B is stored transposed (n×k)")
	fs.IntVar(&g.Iters, "iters", 10, "timed products (after one warm-up)")
	threads := fs.Int("threads", 0, "goroutines (0: GANTRY_THREADS or GOMAXPROCS)")
	kernel := fs.String("kernel", "", "auto, generic, avx2 or avx512 (default: GANTRY_KERNEL or auto)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench gemm: unexpected arguments %q", fs.Args())
	}
	cfg, err := tensor.ConfigFromEnv()
	if err != nil {
		return fmt.Errorf("bench gemm: %w", err)
	}
	if *kernel != "" {
		k, err := tensor.ParseKernel(*kernel)
		if err != nil {
			return fmt.Errorf("bench gemm: %w", err)
		}
		if !k.Available() {
			return fmt.Errorf("bench gemm: kernel %s: this CPU lacks it (available: %v): %w", k, tensor.AvailableKernels(), tensor.ErrKernel)
		}
		cfg.Kernel = k
	}
	if *threads < 0 {
		return fmt.Errorf("bench gemm: --threads %d: want 0 or more", *threads)
	}
	if *threads > 0 {
		cfg.Threads = *threads
	}
	g.Config = cfg
	res, err := tensor.RunGemmBench(ctx, g)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(res)
}
