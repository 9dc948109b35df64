package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gantryml/gantry/internal/pretrain"
	"github.com/gantryml/gantry/internal/safetensors"
)

// runPretrain implements "gantry pretrain": train a small model from
// scratch on a text corpus and write a Hugging Face model directory.
func runPretrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry pretrain", flag.ContinueOnError)
	var o pretrain.Options
	fs.StringVar(&o.Preset, "preset", pretrain.BasePreset, "architecture: "+strings.Join(pretrain.PresetNames(), ", "))
	corpus := fs.String("corpus", "", "UTF-8 text file to train on")
	fs.StringVar(&o.OutDir, "out", "", "output model directory (must not exist or be empty)")
	fs.IntVar(&o.Steps, "steps", pretrain.DefaultSteps, "optimizer steps")
	fs.IntVar(&o.SeqLen, "seq", pretrain.DefaultSeqLen, "tokens per training window")
	fs.IntVar(&o.BatchSize, "batch", pretrain.DefaultBatchSize, "windows per step")
	fs.Float64Var(&o.LearningRate, "learning-rate", pretrain.DefaultLearningRate, "peak learning rate (warmup, then cosine decay)")
	fs.Float64Var(&o.MinLRRatio, "min-lr-ratio", pretrain.DefaultMinLRRatio, "final learning rate as a fraction of the peak")
	fs.IntVar(&o.WarmupSteps, "warmup", 0, "warmup steps (default 5% of --steps)")
	fs.Float64Var(&o.WeightDecay, "weight-decay", pretrain.DefaultWeightDecay, "AdamW weight decay on matrices")
	fs.Float64Var(&o.ValFraction, "val-fraction", pretrain.DefaultValFraction, "tail of the corpus held out for validation")
	fs.IntVar(&o.EvalEvery, "eval-every", 0, "steps between validations (default --steps/10)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the initial weights and of the window sampling")
	fs.IntVar(&o.Threads, "threads", 0, "compute threads (default all CPUs); results are reproducible at a fixed count")
	dtype := fs.String("dtype", "bf16", "weights dtype: f32, f16 or bf16")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *corpus == "" || o.OutDir == "" {
		return errors.New("--corpus and --out are required")
	}
	switch strings.ToLower(*dtype) {
	case "f32", "float32":
		o.DType = safetensors.F32
	case "f16", "float16":
		o.DType = safetensors.F16
	case "bf16", "bfloat16":
		o.DType = safetensors.BF16
	default:
		return fmt.Errorf("--dtype %q: want f32, f16 or bf16", *dtype)
	}
	if o.Threads < 0 {
		return fmt.Errorf("--threads %d: must not be negative", o.Threads)
	}
	if o.Threads > 0 {
		runtime.GOMAXPROCS(o.Threads)
	}
	var err error
	if o.Corpus, err = os.ReadFile(*corpus); err != nil {
		return fmt.Errorf("read corpus: %w", err)
	}

	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := &progressBar{w: os.Stderr}
		defer bar.done()
		o.Logger = slog.New(slog.NewTextHandler(bar, nil))
		o.Progress = func(p pretrain.Progress) {
			const width = 30
			fill := width * p.Step / max(1, p.Steps)
			eta := time.Duration(float64(p.Elapsed) / float64(p.Step) * float64(p.Steps-p.Step)).Round(time.Second)
			bar.line = fmt.Sprintf("\r[%s%s] step %d/%d loss %.4f lr %.2e %.0f tok/s eta %s", strings.Repeat("=", fill),
				strings.Repeat(" ", width-fill), p.Step, p.Steps, p.Loss, p.LR, float64(p.Tokens)/p.Elapsed.Seconds(), eta)
			fmt.Fprint(bar.w, bar.line)
		}
	} else {
		last := time.Now()
		o.Progress = func(p pretrain.Progress) {
			if time.Since(last) < 10*time.Second && p.Step != p.Steps {
				return
			}
			last = time.Now()
			o.Logger.Info("step", "step", p.Step, "steps", p.Steps, "loss", fmt.Sprintf("%.4f", p.Loss), "lr", p.LR,
				"tokens_per_sec", fmt.Sprintf("%.0f", float64(p.Tokens)/p.Elapsed.Seconds()))
		}
	}
	res, err := pretrain.Run(ctx, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
