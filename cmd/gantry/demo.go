package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/gantryml/gantry/internal/demo"
)

// runDemo implements "gantry demo": the whole fine-tuning flow, offline,
// against an embedded server (see internal/demo).
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry demo", flag.ContinueOnError)
	var o demo.Options
	fs.StringVar(&o.DataDir, "data", "", "data directory to use and keep (default a temporary one, removed at the end)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary data directory")
	fs.IntVar(&o.Epochs, "epochs", demo.DefaultEpochs, "training epochs")
	fs.Float64Var(&o.LearningRate, "learning-rate", demo.DefaultLearningRate, "LoRA learning rate")
	fs.IntVar(&o.BatchSize, "batch-size", demo.DefaultBatchSize, "training batch size")
	fs.IntVar(&o.LoraR, "lora-r", demo.DefaultLoraR, "LoRA rank")
	fs.IntVar(&o.LoraAlpha, "lora-alpha", demo.DefaultLoraAlpha, "LoRA alpha")
	fs.Float64Var(&o.LoraDropout, "lora-dropout", demo.DefaultLoraDropout, "LoRA dropout")
	fs.IntVar(&o.Threads, "threads", 0, "training threads (default all CPUs)")
	verbose := fs.Bool("verbose", false, "print the server's logs to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Epochs < 1 || o.BatchSize < 1 || o.LoraR < 1 || o.LoraAlpha < 1 || o.Threads < 0 || !(o.LearningRate > 0 && o.LearningRate <= 1) {
		return fmt.Errorf("--epochs, --batch-size, --lora-r and --lora-alpha must be positive, --learning-rate in (0, 1], --threads not negative")
	}
	o.Out = os.Stdout
	o.Bar = term.IsTerminal(int(os.Stdout.Fd()))
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	_, err := demo.Run(ctx, o)
	return err
}
