package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/peft"
	"github.com/gantryml/gantry/internal/safetensors"
	"github.com/gantryml/gantry/internal/train"
)

// runTrain implements "gantry train": fine-tune a model directory on a
// JSONL dataset and write the adapter; the final metrics go to stdout as
// one JSON object, progress to stderr.
func runTrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry train", flag.ContinueOnError)
	var o train.Options
	var method, targets, resume, metricsPath, precision string
	var seed uint64
	fs.StringVar(&o.ModelDir, "model", "", "base model directory (Hugging Face layout)")
	fs.StringVar(&o.DataPath, "data", "", "training data, JSON Lines of {prompt, completion} or {messages}")
	fs.StringVar(&method, "method", "lora", "fine-tuning method: lora, tfew or vanilla")
	fs.StringVar(&o.OutDir, "out", "", "output adapter directory")
	fs.IntVar(&o.Epochs, "epochs", train.DefaultEpochs, "training epochs")
	fs.Float64Var(&o.LearningRate, "learning-rate", 0, "learning rate (default 0.0002 for lora, 0.01 for tfew and vanilla)")
	fs.IntVar(&o.BatchSize, "batch-size", train.DefaultBatchSize, "examples per step")
	fs.IntVar(&o.EarlyStoppingPatience, "early-stopping-patience", 15, "stop after this many evaluations without improvement (0: never)")
	fs.Float64Var(&o.EarlyStoppingThreshold, "early-stopping-threshold", 0.0001, "least validation-loss decrease that counts as an improvement")
	fs.IntVar(&o.LogInterval, "log-interval", 10, "log metrics every this many steps after the first 20")
	fs.IntVar(&o.LoRARank, "lora-r", train.DefaultLoRARank, "LoRA rank")
	fs.Float64Var(&o.LoRAAlpha, "lora-alpha", train.DefaultLoRAAlpha, "LoRA alpha (scale alpha/r)")
	fs.Float64Var(&o.LoRADropout, "lora-dropout", 0.1, "LoRA dropout")
	fs.StringVar(&targets, "lora-targets", "", "comma-separated LoRA target modules (default all seven projections)")
	fs.IntVar(&o.NumLastLayers, "num-last-layers", 0, "vanilla: train the last N layers (default min(15, layers))")
	fs.Uint64Var(&seed, "seed", 0, "random seed (split, order, adapter init, dropout)")
	fs.BoolVar(&o.Shuffle, "shuffle", true, "shuffle the data (false: file order for the split and the batches)")
	fs.IntVar(&o.MaxSeqLen, "max-seq-len", 0, "longest example in tokens (default min(model context, 2048))")
	fs.StringVar(&o.LRSchedule, "lr-schedule", train.ScheduleLinear, "learning-rate schedule: linear or constant")
	fs.IntVar(&o.WarmupSteps, "warmup-steps", 0, "learning-rate warmup steps")
	fs.Float64Var(&o.WeightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	fs.StringVar(&metricsPath, "metrics-jsonl", "", "write every logged metrics point to this JSON Lines file")
	fs.StringVar(&o.CheckpointDir, "checkpoint-dir", "", "write checkpoints here (every epoch end and --checkpoint-every steps)")
	fs.IntVar(&o.CheckpointEvery, "checkpoint-every", 0, "checkpoint every this many steps (0: epoch ends only)")
	fs.StringVar(&resume, "resume", "", "resume from the checkpoints in this directory (and keep checkpointing there)")
	fs.StringVar(&o.InitAdapter, "init-adapter", "", "start from this LoRA or IA3 adapter's tensors")
	fs.IntVar(&o.Threads, "threads", 0, "compute threads (default GOMAXPROCS)")
	fs.StringVar(&precision, "precision", "fp32", "frozen weights: fp32 (exact) or bf16 (stored and multiplied as bfloat16; trainable parameters stay fp32)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.ModelDir == "" || o.DataPath == "" || o.OutDir == "" {
		return errors.New("--model, --data and --out are required")
	}
	o.Method = nn.Method(method)
	p, err := nn.ParsePrecision(precision)
	if err != nil {
		return fmt.Errorf("--precision: %w", err)
	}
	o.Precision = p
	o.Seed = seed
	if targets != "" {
		o.LoRATargets = strings.Split(targets, ",")
	}
	if resume != "" {
		if o.CheckpointDir != "" && o.CheckpointDir != resume {
			return errors.New("--resume and --checkpoint-dir name different directories")
		}
		o.CheckpointDir, o.Resume = resume, true
	}
	switch {
	case o.LearningRate < 0:
		return fmt.Errorf("--learning-rate %v must be positive", o.LearningRate)
	case o.Epochs < 1:
		return fmt.Errorf("--epochs %d must be at least 1", o.Epochs)
	case o.BatchSize < 1:
		return fmt.Errorf("--batch-size %d must be at least 1", o.BatchSize)
	case o.LoRARank < 1 || o.LoRAAlpha <= 0:
		return fmt.Errorf("--lora-r %d and --lora-alpha %v must be positive", o.LoRARank, o.LoRAAlpha)
	}
	if metricsPath != "" {
		// A resumed run appends to its earlier points (those after its
		// last checkpoint appear twice); a new run starts the file afresh.
		mode := os.O_TRUNC
		if o.Resume {
			mode = os.O_APPEND
		}
		f, err := os.OpenFile(metricsPath, os.O_CREATE|os.O_WRONLY|mode, 0o644)
		if err != nil {
			return fmt.Errorf("metrics file: %w", err)
		}
		defer f.Close()
		o.Metrics = f
	}

	tty := term.IsTerminal(int(os.Stderr.Fd()))
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	if tty {
		bar := &progressBar{w: os.Stderr}
		o.OnProgress = bar.update
		defer bar.done()
		o.Logger = slog.New(slog.NewTextHandler(bar, nil))
	}
	o.OnMetrics = func(m train.Metrics) {
		attrs := []any{"step", m.Step, "epoch", m.Epoch, "loss", fmt.Sprintf("%.4f", m.TrainLoss), "lr", m.LearningRate, "tokens_per_sec", fmt.Sprintf("%.0f", m.TokensPerSec)}
		if m.ValLoss != nil {
			attrs = append(attrs, "val_loss", fmt.Sprintf("%.4f", *m.ValLoss), "val_accuracy", fmt.Sprintf("%.4f", *m.ValAccuracy))
		}
		o.Logger.Info("metrics", attrs...)
	}

	res, err := train.Run(ctx, o)
	if err != nil {
		if ctx.Err() != nil && o.CheckpointDir != "" {
			return fmt.Errorf("%w (continue with --resume %s)", err, o.CheckpointDir)
		}
		return err
	}
	out := struct {
		FinalAccuracy     float64 `json:"final_accuracy"`
		FinalLoss         float64 `json:"final_loss"`
		Steps             int     `json:"steps"`
		EpochsCompleted   int     `json:"epochs_completed"`
		EarlyStopped      bool    `json:"early_stopped"`
		TrainExamples     int     `json:"train_examples"`
		ValExamples       int     `json:"val_examples"`
		TruncatedExamples int     `json:"truncated_examples"`
	}{res.FinalAccuracy, res.FinalLoss, res.Steps, res.EpochsCompleted, res.EarlyStopped, res.TrainExamples, res.ValExamples, res.TruncatedExamples}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// progressBar draws one updating line on a terminal; log lines written
// through it clear the bar first.
type progressBar struct {
	w    io.Writer
	line string
}

func (p *progressBar) update(pr train.Progress) {
	const width = 30
	fill := width * pr.Step / max(1, pr.TotalSteps)
	p.line = fmt.Sprintf("\r[%s%s] step %d/%d loss %.4f", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pr.Step, pr.TotalSteps, pr.Loss)
	fmt.Fprint(p.w, p.line)
}

func (p *progressBar) Write(b []byte) (int, error) {
	if p.line != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
	n, err := p.w.Write(b)
	if p.line != "" {
		fmt.Fprint(p.w, p.line)
	}
	return n, err
}

func (p *progressBar) done() {
	if p.line != "" {
		fmt.Fprintln(p.w)
	}
}

// runExport implements "gantry export": merge an adapter into its base
// model and write a full Hugging Face model directory.
func runExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry export", flag.ContinueOnError)
	base := fs.String("model", "", "base model directory")
	adapter := fs.String("adapter", "", "adapter directory (LoRA, IA3 or vanilla)")
	out := fs.String("out", "", "output model directory (must not exist or be empty)")
	dtype := fs.String("dtype", "", "weights dtype: f32, f16 or bf16 (default the base model's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *base == "" || *adapter == "" || *out == "" {
		return errors.New("--model, --adapter and --out are required")
	}
	var opt peft.ExportOptions
	switch strings.ToLower(*dtype) {
	case "":
	case "f32", "float32":
		opt.DType = safetensors.F32
	case "f16", "float16":
		opt.DType = safetensors.F16
	case "bf16", "bfloat16":
		opt.DType = safetensors.BF16
	default:
		return fmt.Errorf("--dtype %q: want f32, f16 or bf16", *dtype)
	}
	return peft.Export(ctx, *base, *adapter, *out, opt)
}
