package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantryml/gantry/internal/hub"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/peft"
	"github.com/gantryml/gantry/internal/safetensors"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runGenerate implements "gantry generate": continue a prompt with a model
// directory and an optional adapter, printing only the continuation.
func runGenerate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry generate", flag.ContinueOnError)
	var modelDir, adapterDir, prompt string
	var opts model.GenerateOptions
	var stops stringList
	fs.StringVar(&modelDir, "model", "", "model directory (Hugging Face layout)")
	fs.StringVar(&adapterDir, "adapter", "", "adapter directory (PEFT LoRA or IA3, or Gantry vanilla), merged for generation")
	fs.StringVar(&prompt, "prompt", "", "prompt text (encoded with the tokenizer's default special tokens)")
	fs.IntVar(&opts.MaxTokens, "max-tokens", 128, "most tokens to generate")
	fs.Float64Var(&opts.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fs.IntVar(&opts.TopK, "top-k", 0, "sample from the K most likely tokens (0: all)")
	fs.Float64Var(&opts.TopP, "top-p", 0, "sample from the smallest set of tokens whose probability reaches P (0: all)")
	fs.Uint64Var(&opts.Seed, "seed", 0, "sampling seed")
	fs.Var(&stops, "stop", "stop when the output contains this text (repeatable); the text itself is not printed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if modelDir == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: gantry generate --model DIR [--adapter DIR] --prompt TEXT [flags]")
	}
	m, err := model.Load(modelDir)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		return err
	}
	if adapterDir != "" {
		a, err := peft.Load(adapterDir)
		if err != nil {
			return err
		}
		if err := a.Merge(&m.Config, &m.Weights); err != nil {
			return fmt.Errorf("merge adapter %s: %w", adapterDir, err)
		}
	}
	ids := tok.Encode(prompt, true)
	if len(ids) == 0 {
		return errors.New("generate: the prompt encodes to no tokens")
	}
	if len(m.Generation.EOSTokenID) == 0 && len(m.Config.EOSTokenID) == 0 {
		if eos, ok := tok.EOS(); ok {
			opts.EOS = []int{eos}
		}
	}
	opts.Stop = stops
	opts.Decoder = tok
	out, err := m.Generate(ctx, ids, opts)
	if err != nil {
		return err
	}
	text, _ := model.TrimStop(tok.Decode(out, true), stops)
	fmt.Println(text)
	return nil
}

// runModelInit implements "gantry model init": write a randomly initialised
// model directory from a preset.
func runModelInit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model init", flag.ContinueOnError)
	var preset, out, tokPath, dtype string
	var seed uint64
	fs.StringVar(&preset, "preset", "", "configuration: "+strings.Join(model.Presets(), ", "))
	fs.Uint64Var(&seed, "seed", 0, "random seed (same seed, same weights)")
	fs.StringVar(&out, "out", "", "output directory")
	fs.StringVar(&tokPath, "tokenizer", "", "tokenizer.json to use (its vocabulary size sets the model's; a tokenizer_config.json beside it is copied too); default: the built-in byte-level tokenizer")
	fs.StringVar(&dtype, "dtype", "f32", "weight dtype on disk: f32, bf16 or f16")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if preset == "" || out == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: gantry model init --preset NAME --out DIR [--seed N] [--tokenizer FILE] [--dtype f32|bf16|f16]")
	}
	opts := model.InitOptions{Preset: preset, Seed: seed, DType: safetensors.DType(strings.ToUpper(dtype))}
	if !opts.DType.Supported() {
		return fmt.Errorf("model init: --dtype %q: want f32, bf16 or f16", dtype)
	}
	cfg, err := model.PresetConfig(preset)
	if err != nil {
		return err
	}
	if tokPath != "" {
		if opts.TokenizerJSON, err = os.ReadFile(tokPath); err != nil {
			return fmt.Errorf("model init: %w", err)
		}
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(tokPath), "tokenizer_config.json")); err == nil {
			opts.TokenizerConfigJSON = b
		}
	} else {
		opts.TokenizerJSON, opts.TokenizerConfigJSON = tokenizer.ByteLevelFiles()
	}
	tok, err := tokenizer.Parse(opts.TokenizerJSON, opts.TokenizerConfigJSON)
	if err != nil {
		return fmt.Errorf("model init: %w", err)
	}
	// The tokenizer sets the vocabulary of tiny presets and of any preset
	// given --tokenizer; a published preset keeps its (larger) vocabulary
	// with the built-in tokenizer.
	opts.VocabSize = tok.VocabSize()
	if pv, ok := cfg["vocab_size"].(json.Number); ok && tokPath == "" && !strings.HasPrefix(preset, "tiny") {
		if n, err := pv.Int64(); err == nil && int(n) > opts.VocabSize {
			opts.VocabSize = int(n)
		}
	}
	if id, ok := tok.BOS(); ok {
		opts.BOS = &id
	}
	if id, ok := tok.EOS(); ok {
		opts.EOS = &id
	}
	if err := model.Init(ctx, out, opts); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (preset %s, vocab %d, %s)\n", out, preset, opts.VocabSize, opts.DType)
	return nil
}

// runModelInspect implements "gantry model inspect": describe a model
// directory.
func runModelInspect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("usage: gantry model inspect [--json] DIR")
	}
	dir := pos[0]
	info, err := model.Inspect(dir)
	if err != nil {
		return err
	}
	out := struct {
		*model.Info
		Tokenizer *tokenizerSummary `json:"tokenizer,omitempty"`
	}{Info: info}
	if tok, err := tokenizer.Load(dir); err == nil {
		s := &tokenizerSummary{Kind: tok.Kind(), VocabSize: tok.VocabSize()}
		if id, ok := tok.BOS(); ok {
			s.BOS = &id
		}
		if id, ok := tok.EOS(); ok {
			s.EOS = &id
		}
		out.Tokenizer = s
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	c := &info.Config
	fmt.Printf("architecture   %s (%s)\n", info.Architecture, info.ModelType)
	fmt.Printf("parameters     %d (%.1fM)\n", info.Parameters, float64(info.Parameters)/1e6)
	fmt.Printf("layers         %d, hidden %d, intermediate %d\n", c.NumHiddenLayers, c.HiddenSize, c.IntermediateSize)
	fmt.Printf("attention      %d heads, %d kv heads, head dim %d, rope theta %g", c.NumAttentionHeads, c.NumKeyValueHeads, c.Dim(), c.RopeTheta)
	if c.RopeScaling != nil {
		fmt.Printf(", rope scaling %s ×%g", c.RopeScaling.RopeType, c.RopeScaling.Factor)
	}
	fmt.Println()
	fmt.Printf("vocabulary     %d, tied embeddings %v, context %d\n", c.VocabSize, c.TieWordEmbeddings, c.MaxPositionEmbeddings)
	var dts []string
	for d, n := range info.DTypes {
		dts = append(dts, fmt.Sprintf("%s×%d", d, n))
	}
	sort.Strings(dts)
	fmt.Printf("weights        %d tensors (%s) in %s, %d bytes\n", info.Tensors, strings.Join(dts, ", "), strings.Join(info.Files, ", "), info.SizeBytes)
	var names []string
	for n := range info.Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-14s %v\n", n, info.Shapes[n])
	}
	if out.Tokenizer != nil {
		fmt.Printf("tokenizer      %s, vocabulary %d\n", out.Tokenizer.Kind, out.Tokenizer.VocabSize)
	} else {
		fmt.Printf("tokenizer      none\n")
	}
	return nil
}

// tokenizerSummary is the tokenizer part of "gantry model inspect --json".
type tokenizerSummary struct {
	Kind      string `json:"kind"`
	VocabSize int    `json:"vocab_size"`
	BOS       *int   `json:"bos_token_id,omitempty"`
	EOS       *int   `json:"eos_token_id,omitempty"`
}

// runModelPull implements "gantry model pull": download a Hugging Face
// repository into a directory, resuming and verifying.
func runModelPull(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model pull", flag.ContinueOnError)
	var c hub.Client
	var revision, out string
	var include stringList
	fs.StringVar(&revision, "revision", "main", "branch, tag or commit")
	fs.StringVar(&out, "out", "", "output directory")
	fs.StringVar(&c.Endpoint, "endpoint", "", "hub URL (default $HF_ENDPOINT or "+hub.DefaultEndpoint+")")
	fs.StringVar(&c.Token, "token", "", "access token (default $HF_TOKEN)")
	fs.Var(&include, "include", "download only files matching this glob (repeatable), e.g. '*.json'")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var repo string
	if len(pos) == 1 {
		repo = pos[0]
	}
	if repo == "" || out == "" {
		return fmt.Errorf("usage: gantry model pull ORG/NAME --out DIR [--revision R] [--endpoint URL] [--token T]")
	}
	c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	res, err := c.Pull(ctx, repo, revision, out, hub.PullOptions{Include: include})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "pulled %s@%s into %s: %d downloaded, %d already complete, %d bytes\n",
		repo, res.Revision, out, len(res.Downloaded), len(res.Skipped), res.Bytes)
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
