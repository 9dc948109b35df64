package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/gantryml/gantry/internal/nn"
)

// runBenchTrain implements "gantry bench train": it times training steps
// of a preset's shape with random weights and prints one JSON object.
func runBenchTrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry bench train", flag.ContinueOnError)
	preset := fs.String("preset", "tiny", "model shape: "+strings.Join(nn.BenchPresets(), ", "))
	method := fs.String("method", "lora", "lora, tfew or vanilla")
	seq := fs.Int("seq", 256, "sequence length")
	batch := fs.Int("batch", 8, "sequences per step")
	steps := fs.Int("steps", 3, "timed steps (after one warm-up step)")
	threads := fs.Int("threads", 0, "threads (0: all CPUs)")
	last := fs.Int("last-layers", 0, "vanilla: train the last N layers (0: all)")
	precision := fs.String("precision", "fp32", "frozen weights: fp32 (exact) or bf16 (stored and multiplied as bfloat16)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := nn.BenchTrain(ctx, nn.BenchOptions{
		Preset: *preset, Method: nn.Method(*method), Seq: *seq, Batch: *batch,
		Steps: *steps, Threads: *threads, NumLastLayers: *last, Precision: nn.Precision(*precision),
	})
	if err != nil {
		return fmt.Errorf("bench train: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
