package pretrain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/safetensors"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// microConfig is a 2-layer Llama small enough to pretrain in a test.
func microConfig() map[string]any {
	return map[string]any{
		"architectures": []any{"LlamaForCausalLM"}, "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
		"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "initializer_range": 0.02,
		"tie_word_embeddings": false, "vocab_size": 259,
	}
}

var microCorpus = []byte(strings.Repeat("the cat sat on the mat. the dog sat on the log. ", 120))

func microOptions(out string, seed uint64) Options {
	return Options{Config: microConfig(), Corpus: microCorpus, OutDir: out, Steps: 40, SeqLen: 32, BatchSize: 4,
		LearningRate: 1e-2, EvalWindows: 8, Seed: seed, Threads: 2}
}

func TestRunLearnsAndWritesAModel(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "m")
	var steps, evals int
	opt := microOptions(out, 1)
	opt.Progress = func(p Progress) {
		steps++
		if p.Evaluated {
			evals++
		}
		if p.Step != steps || p.Steps != 40 || math.IsNaN(p.Loss) || p.LR <= 0 {
			t.Errorf("progress %+v at call %d", p, steps)
		}
	}
	res, err := Run(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if steps != 40 || evals != 10 {
		t.Errorf("%d progress calls with %d validations, want 40 and 10", steps, evals)
	}
	// A uniform guess over 259 tokens costs ln 259 ≈ 5.56 nats; the
	// corpus repeats one sentence pair, so the loss must fall far below.
	if !(res.InitialValLoss > 5 && res.FinalValLoss < 2.5) {
		t.Errorf("validation loss %.3f -> %.3f, want from > 5 to < 2.5", res.InitialValLoss, res.FinalValLoss)
	}
	if res.TokensSeen != 40*4*32 || res.Steps != 40 || res.TrainTokens+res.ValTokens != len(microCorpus) {
		t.Errorf("result %+v", res)
	}

	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.DTypes["BF16"] == 0 || len(m.DTypes) != 1 || m.Config.TorchDtype != "bfloat16" {
		t.Errorf("dtypes %v, torch_dtype %q, want bf16 only", m.DTypes, m.Config.TorchDtype)
	}
	tok, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != m.Config.VocabSize {
		t.Errorf("tokenizer vocabulary %d, model %d", tok.VocabSize(), m.Config.VocabSize)
	}
	ids, err := m.Generate(ctx, tok.Encode("the cat sat on the", false), model.GenerateOptions{MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(ids, true); got != " mat" && got != " log" {
		t.Errorf("continuation %q, want %q or %q", got, " mat", " log")
	}
	var rec Record
	b, err := os.ReadFile(filepath.Join(out, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Steps != 40 || rec.Seed != 1 || rec.Threads != 2 || rec.Result.FinalValLoss != res.FinalValLoss {
		t.Errorf("record %+v", rec)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("%d entries beside the output, want only it (temporary directory left?)", len(ents))
	}
}

func TestRunIsDeterministic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	weights := func(name string, seed uint64) []byte {
		opt := microOptions(filepath.Join(dir, name), seed)
		opt.Steps = 8
		if _, err := Run(ctx, opt); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name, safetensors.SingleFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := weights("a", 3), weights("b", 3), weights("c", 4)
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different weights")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same weights")
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"short corpus", func(o *Options) { o.Corpus = []byte("too short") }, "too short for windows"},
		{"unknown preset", func(o *Options) { o.Config, o.Preset = nil, "nope" }, `unknown preset "nope"`},
		{"output not empty", func(o *Options) { o.OutDir = full }, "not empty"},
		{"no output", func(o *Options) { o.OutDir = "" }, "no output directory"},
		{"window beyond context", func(o *Options) { o.SeqLen = 65 }, "exceeds the model's context of 64"},
		{"learning rate", func(o *Options) { o.LearningRate = 2 }, "learning rate 2"},
		{"dtype", func(o *Options) { o.DType = "I8" }, `dtype "I8"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := microOptions(filepath.Join(t.TempDir(), "m"), 1)
			c.edit(&o)
			_, err := Run(ctx, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if c.name != "window beyond context" && !errors.Is(err, ErrOptions) {
				t.Errorf("error %v does not wrap ErrOptions", err)
			}
		})
	}
}

func TestLRAt(t *testing.T) {
	for _, c := range []struct {
		step, total, warmup int
		want                float64
	}{
		{1, 100, 10, 0.1}, {10, 100, 10, 1}, {100, 100, 10, 0.1}, {55, 100, 10, 0.55}, {1, 1, 0, 0.1},
	} {
		if got := LRAt(c.step, c.total, c.warmup, 1, 0.1); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LRAt(%d, %d, %d) = %v, want %v", c.step, c.total, c.warmup, got, c.want)
		}
	}
}

func TestPresets(t *testing.T) {
	names := PresetNames()
	for _, want := range []string{BasePreset, "tiny"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("PresetNames() = %v lacks %s", names, want)
		}
	}
	m, err := PresetConfig(BasePreset)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	cfg, err := model.ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NumHiddenLayers != 4 || cfg.HiddenSize != 128 || cfg.MaxPositionEmbeddings != 256 {
		t.Errorf("%s config %+v", BasePreset, cfg)
	}
}
