// Package pretrain trains a small causal language model from scratch on
// a text corpus: it initialises a model directory with the built-in
// byte-level tokenizer, trains every weight on next-token prediction over
// random windows of the tokenized text (a held-out tail of the text gives
// the validation loss), and writes a normal Hugging Face model directory.
// Gantry's built-in default base model (internal/basemodel) was made with
// it.
package pretrain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/safetensors"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// Defaults Run applies to zero Options fields.
const (
	DefaultSteps        = 1000
	DefaultSeqLen       = 256
	DefaultBatchSize    = 16
	DefaultLearningRate = 2e-3
	DefaultMinLRRatio   = 0.1
	DefaultWeightDecay  = 0.1
	DefaultMaxGradNorm  = 1.0
	DefaultValFraction  = 0.05
	DefaultEvalWindows  = 32
	DefaultEvals        = 10
)

// ErrOptions is wrapped by errors about bad options or a bad corpus.
var ErrOptions = errors.New("pretrain: invalid options")

// Options configure a pretraining run. Zero numeric fields take the
// defaults above; WarmupSteps 0 means 5% of Steps.
type Options struct {
	// Preset names the architecture (see PresetNames); Config, when not
	// nil, is the config.json to use instead. vocab_size, bos_token_id and
	// eos_token_id are replaced by the built-in tokenizer's.
	Preset string
	Config map[string]any
	// Corpus is the training text (UTF-8).
	Corpus []byte
	// OutDir receives the model directory; it must not exist or be empty.
	OutDir string

	Steps        int
	SeqLen       int // tokens per training window (at most the model's context)
	BatchSize    int // windows per step
	LearningRate float64
	MinLRRatio   float64 // the cosine schedule ends at LearningRate·MinLRRatio
	WarmupSteps  int
	WeightDecay  float64 // on matrices only, not on norms or embeddings; negative: none
	MaxGradNorm  float64
	ValFraction  float64 // the tail of the token stream held out for validation
	EvalWindows  int     // validation windows of SeqLen tokens (at most what the tail holds)
	EvalEvery    int     // steps between validations; 0: Steps/DefaultEvals
	Seed         uint64  // weights and window sampling
	Threads      int     // attention threads; 0: GOMAXPROCS
	// DType is the on-disk dtype of the weights: BF16 (the default), F16
	// or F32.
	DType safetensors.DType
	// Progress, when set, is called after every step.
	Progress func(Progress)
	// Logger receives a line per validation; nil discards.
	Logger *slog.Logger
}

// Progress reports one finished step.
type Progress struct {
	Step, Steps int
	Loss        float64 // mean training loss of this step (nats per token)
	LR          float64
	// Evaluated says this step ran a validation; ValLoss is its loss.
	Evaluated bool
	ValLoss   float64
	Tokens    int64 // training tokens seen so far
	Elapsed   time.Duration
}

// Result is a finished run.
type Result struct {
	Params         int64   `json:"params"`
	CorpusBytes    int     `json:"corpus_bytes"`
	TrainTokens    int     `json:"train_tokens"`
	ValTokens      int     `json:"val_tokens"`
	Steps          int     `json:"steps"`
	TokensSeen     int64   `json:"tokens_seen"`
	InitialValLoss float64 `json:"initial_val_loss"`
	FinalValLoss   float64 `json:"final_val_loss"`
	// FinalTrainLoss is the mean training loss of the last 5% of steps.
	FinalTrainLoss float64 `json:"final_train_loss"`
	Seconds        float64 `json:"seconds"`
}

// Record is what Run writes to OUT/pretrain.json: the options that
// determine the weights and the result.
type Record struct {
	Preset       string  `json:"preset,omitempty"`
	Steps        int     `json:"steps"`
	SeqLen       int     `json:"seq_len"`
	BatchSize    int     `json:"batch_size"`
	LearningRate float64 `json:"learning_rate"`
	MinLRRatio   float64 `json:"min_lr_ratio"`
	WarmupSteps  int     `json:"warmup_steps"`
	WeightDecay  float64 `json:"weight_decay"`
	MaxGradNorm  float64 `json:"max_grad_norm"`
	ValFraction  float64 `json:"val_fraction"`
	EvalWindows  int     `json:"eval_windows"`
	Seed         uint64  `json:"seed"`
	Threads      int     `json:"threads"`
	DType        string  `json:"dtype"`
	Result       Result  `json:"result"`
}

// RecordFile is the name of the run record in the output directory.
const RecordFile = "pretrain.json"

func (o Options) withDefaults() (Options, error) {
	def := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	deff := func(p *float64, d float64) {
		if *p == 0 {
			*p = d
		}
	}
	def(&o.Steps, DefaultSteps)
	def(&o.SeqLen, DefaultSeqLen)
	def(&o.BatchSize, DefaultBatchSize)
	def(&o.EvalWindows, DefaultEvalWindows)
	deff(&o.LearningRate, DefaultLearningRate)
	deff(&o.MinLRRatio, DefaultMinLRRatio)
	deff(&o.WeightDecay, DefaultWeightDecay)
	deff(&o.MaxGradNorm, DefaultMaxGradNorm)
	deff(&o.ValFraction, DefaultValFraction)
	if o.WarmupSteps == 0 {
		o.WarmupSteps = max(1, o.Steps/20)
	}
	if o.EvalEvery == 0 {
		o.EvalEvery = max(1, o.Steps/DefaultEvals)
	}
	if o.WeightDecay < 0 {
		o.WeightDecay = 0
	}
	if o.DType == "" {
		o.DType = safetensors.BF16
	}
	switch {
	case o.Steps < 1 || o.Steps > 10_000_000:
		return o, fmt.Errorf("%w: steps %d not in [1, 10000000]", ErrOptions, o.Steps)
	case o.SeqLen < 2 || o.SeqLen > 1<<16:
		return o, fmt.Errorf("%w: sequence length %d not in [2, 65536]", ErrOptions, o.SeqLen)
	case o.BatchSize < 1 || o.BatchSize*o.SeqLen > 1<<20:
		return o, fmt.Errorf("%w: batch size %d (at most %d windows of %d tokens)", ErrOptions, o.BatchSize, (1<<20)/o.SeqLen, o.SeqLen)
	case !(o.LearningRate > 0 && o.LearningRate <= 1):
		return o, fmt.Errorf("%w: learning rate %v not in (0, 1]", ErrOptions, o.LearningRate)
	case !(o.MinLRRatio >= 0 && o.MinLRRatio <= 1):
		return o, fmt.Errorf("%w: minimum learning-rate ratio %v not in [0, 1]", ErrOptions, o.MinLRRatio)
	case o.WarmupSteps < 0 || o.WarmupSteps > o.Steps:
		return o, fmt.Errorf("%w: warmup steps %d not in [0, %d]", ErrOptions, o.WarmupSteps, o.Steps)
	case !(o.MaxGradNorm > 0):
		return o, fmt.Errorf("%w: max gradient norm %v must be positive", ErrOptions, o.MaxGradNorm)
	case !(o.ValFraction > 0 && o.ValFraction < 0.5):
		return o, fmt.Errorf("%w: validation fraction %v not in (0, 0.5)", ErrOptions, o.ValFraction)
	case o.EvalWindows < 1 || o.EvalEvery < 1:
		return o, fmt.Errorf("%w: eval windows %d and eval interval %d must be positive", ErrOptions, o.EvalWindows, o.EvalEvery)
	case !o.DType.Supported():
		return o, fmt.Errorf("%w: dtype %q (want F32, F16 or BF16)", ErrOptions, o.DType)
	case o.OutDir == "":
		return o, fmt.Errorf("%w: no output directory", ErrOptions)
	}
	return o, nil
}

// LRAt is the learning rate of step (1-based) of total: a linear warmup
// from peak/warmup to peak over the first warmup steps, then a cosine
// decay to peak·minRatio at the last step.
func LRAt(step, total, warmup int, peak, minRatio float64) float64 {
	if step <= warmup {
		return peak * float64(step) / float64(max(1, warmup))
	}
	p := float64(step-warmup) / float64(max(1, total-warmup))
	return peak * (minRatio + (1-minRatio)*0.5*(1+math.Cos(math.Pi*p)))
}

// Run pretrains a model as opt says and writes it to opt.OutDir (via a
// temporary sibling directory renamed into place, so an interrupted run
// leaves nothing half-written). The same options, corpus and thread
// count give the same bytes.
func Run(ctx context.Context, opt Options) (*Result, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkOutDir(opt.OutDir); err != nil {
		return nil, err
	}
	cfgMap := opt.Config
	if cfgMap == nil {
		if cfgMap, err = PresetConfig(opt.Preset); err != nil {
			return nil, err
		}
	}
	tokJSON, tokCfgJSON := tokenizer.ByteLevelFiles()
	tok, err := tokenizer.Parse(tokJSON, tokCfgJSON)
	if err != nil {
		return nil, fmt.Errorf("built-in tokenizer: %w", err)
	}
	ids := tok.Encode(string(opt.Corpus), false)
	nVal := int(float64(len(ids)) * opt.ValFraction)
	if nVal < opt.SeqLen+1 || len(ids)-nVal < opt.SeqLen+1 {
		return nil, fmt.Errorf("%w: corpus of %d tokens too short for windows of %d tokens with a %.0f%% validation tail", ErrOptions, len(ids), opt.SeqLen, 100*opt.ValFraction)
	}
	trainIDs, valIDs := toInt32(ids[:len(ids)-nVal]), toInt32(ids[len(ids)-nVal:])

	parent := filepath.Dir(filepath.Clean(opt.OutDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".pretrain-")
	if err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	defer os.RemoveAll(tmp)
	initOpts := model.InitOptions{Config: cfgMap, Seed: opt.Seed, DType: safetensors.F32, TokenizerJSON: tokJSON, TokenizerConfigJSON: tokCfgJSON, VocabSize: tok.VocabSize()}
	if id, ok := tok.BOS(); ok {
		initOpts.BOS = &id
	}
	if id, ok := tok.EOS(); ok {
		initOpts.EOS = &id
	}
	if err := model.Init(ctx, tmp, initOpts); err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	m, err := model.Load(tmp)
	if err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	defer m.Close()
	cfg := &m.Config
	if c := cfg.MaxPositionEmbeddings; c > 0 && opt.SeqLen > c {
		return nil, fmt.Errorf("%w: sequence length %d exceeds the model's context of %d", ErrOptions, opt.SeqLen, c)
	}
	net, err := nn.NewFull(cfg, &m.Weights, nn.Options{Seed: opt.Seed, Threads: opt.Threads})
	if err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	// Decay matrices only (embedding excepted), as is usual for
	// transformers: norms and embeddings keep their scale.
	var decayed, plain []*nn.Param
	for _, p := range net.Params() {
		if len(p.Shape) == 2 && p.Name != "model.embed_tokens.weight" {
			decayed = append(decayed, p)
		} else {
			plain = append(plain, p)
		}
	}
	optD, optP := nn.NewAdamW(decayed), nn.NewAdamW(plain)
	for _, o := range []*nn.AdamW{optD, optP} {
		o.Beta1, o.Beta2 = 0.9, 0.95
	}
	optD.WeightDecay = opt.WeightDecay

	res := &Result{Params: m.NumParams(), CorpusBytes: len(opt.Corpus), TrainTokens: len(trainIDs), ValTokens: len(valIDs)}
	val := valWindows(valIDs, opt.SeqLen, opt.EvalWindows)
	evaluate := func() (float64, error) { return evalLoss(ctx, net, val, opt.BatchSize, opt.SeqLen) }
	if res.InitialValLoss, err = evaluate(); err != nil {
		return nil, err
	}
	log.Info("pretraining", "params", res.Params, "train_tokens", len(trainIDs), "val_tokens", len(valIDs),
		"steps", opt.Steps, "batch", opt.BatchSize, "seq", opt.SeqLen, "initial_val_loss", res.InitialValLoss)

	rng := rand.New(rand.NewPCG(opt.Seed, 0x7072657472616e)) // window starts
	B, T := opt.BatchSize, opt.SeqLen
	batch := &nn.Batch{B: B, T: T, Tokens: make([]int32, B*T), Targets: make([]int32, B*T)}
	all := net.Params()
	tail := max(1, opt.Steps/20)
	var tailLoss float64
	start := time.Now()
	for step := 1; step <= opt.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("pretraining stopped after step %d: %w", step-1, err)
		}
		for b := 0; b < B; b++ {
			s := rng.IntN(len(trainIDs) - T)
			copy(batch.Tokens[b*T:(b+1)*T], trainIDs[s:s+T])
			copy(batch.Targets[b*T:(b+1)*T], trainIDs[s+1:s+T+1])
		}
		net.ZeroGrad()
		lossSum, n, err := net.ForwardBackward(ctx, batch, 1/float32(B*T))
		if err != nil {
			return nil, fmt.Errorf("pretrain step %d: %w", step, err)
		}
		loss := lossSum / float64(n)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("pretrain step %d: loss is %v (try a lower learning rate)", step, loss)
		}
		nn.ClipGradNorm(all, opt.MaxGradNorm)
		lr := LRAt(step, opt.Steps, opt.WarmupSteps, opt.LearningRate, opt.MinLRRatio)
		optD.Step(lr)
		optP.Step(lr)
		res.Steps = step
		res.TokensSeen += int64(B * T)
		if step > opt.Steps-tail {
			tailLoss += loss
		}
		p := Progress{Step: step, Steps: opt.Steps, Loss: loss, LR: lr, Tokens: res.TokensSeen, Elapsed: time.Since(start)}
		if step%opt.EvalEvery == 0 || step == opt.Steps {
			if p.ValLoss, err = evaluate(); err != nil {
				return nil, err
			}
			p.Evaluated = true
			res.FinalValLoss = p.ValLoss
			log.Info("validation", "step", step, "loss", loss, "val_loss", p.ValLoss, "lr", lr, "elapsed", p.Elapsed.Round(time.Second).String())
		}
		if opt.Progress != nil {
			opt.Progress(p)
		}
	}
	res.FinalTrainLoss = tailLoss / float64(tail)
	res.Seconds = time.Since(start).Seconds()

	if err := writeModel(tmp, m, opt.DType); err != nil {
		return nil, err
	}
	rec := Record{
		Preset: opt.Preset, Steps: opt.Steps, SeqLen: opt.SeqLen, BatchSize: opt.BatchSize, LearningRate: opt.LearningRate,
		MinLRRatio: opt.MinLRRatio, WarmupSteps: opt.WarmupSteps, WeightDecay: opt.WeightDecay, MaxGradNorm: opt.MaxGradNorm,
		ValFraction: opt.ValFraction, EvalWindows: len(val), Seed: opt.Seed, Threads: opt.Threads, DType: string(opt.DType), Result: *res,
	}
	if rec.Threads == 0 {
		rec.Threads = runtime.GOMAXPROCS(0)
	}
	if opt.Config != nil {
		rec.Preset = ""
	}
	recJSON, _ := json.MarshalIndent(rec, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, RecordFile), append(recJSON, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	m.Close()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	os.Remove(opt.OutDir) // an empty directory (checked above) is replaced
	if err := os.Rename(tmp, opt.OutDir); err != nil {
		return nil, fmt.Errorf("pretrain: move the model into place: %w", err)
	}
	return res, nil
}

// checkOutDir accepts a missing or empty directory.
func checkOutDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%w: output directory %s exists and is not empty", ErrOptions, dir)
	}
	return nil
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// window is one validation sequence: SeqLen tokens and their next tokens.
type window struct{ tokens, targets []int32 }

// valWindows cuts up to n windows of T tokens from ids, spread evenly
// over it (non-overlapping when it holds n of them).
func valWindows(ids []int32, T, n int) []window {
	fit := (len(ids) - 1) / T
	n = min(n, fit)
	out := make([]window, n)
	stride := fit / n
	for i := range out {
		s := i * stride * T
		out[i] = window{ids[s : s+T], ids[s+1 : s+T+1]}
	}
	return out
}

// evalLoss is the mean loss per token over the windows, run in batches of
// at most B.
func evalLoss(ctx context.Context, net *nn.Full, ws []window, B, T int) (float64, error) {
	var sum float64
	var count int
	for i := 0; i < len(ws); i += B {
		n := min(B, len(ws)-i)
		b := &nn.Batch{B: n, T: T, Tokens: make([]int32, 0, n*T), Targets: make([]int32, 0, n*T)}
		for _, w := range ws[i : i+n] {
			b.Tokens = append(b.Tokens, w.tokens...)
			b.Targets = append(b.Targets, w.targets...)
		}
		l, _, c, err := net.Evaluate(ctx, b)
		if err != nil {
			return 0, fmt.Errorf("validation: %w", err)
		}
		sum += l
		count += c
	}
	return sum / float64(count), nil
}

// writeModel replaces dir's F32 weights by m's trained ones in dtype and
// records the dtype in config.json.
func writeModel(dir string, m *model.Model, dtype safetensors.DType) error {
	named, err := namedTensors(&m.Config, &m.Weights)
	if err != nil {
		return err
	}
	ts := make([]safetensors.Tensor, 0, len(named))
	for _, t := range named {
		ts = append(ts, safetensors.Tensor{Name: t.name, DType: dtype, Shape: t.shape, Data: t.data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, safetensors.SingleFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("pretrain: write weights: %w", err)
	}
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("pretrain: config.json: %w", err)
	}
	cfg["torch_dtype"] = map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}[dtype]
	out, _ := json.MarshalIndent(cfg, "", "  ")
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

type namedTensor struct {
	name  string
	shape []int
	data  []float32
}

// namedTensors maps every Hugging Face tensor name of cfg to its weights.
func namedTensors(cfg *model.Config, w *model.Weights) ([]namedTensor, error) {
	C, V := cfg.HiddenSize, cfg.VocabSize
	out := []namedTensor{
		{"model.embed_tokens.weight", []int{V, C}, w.Embed},
		{"model.norm.weight", []int{C}, w.Norm},
	}
	if !cfg.TieWordEmbeddings {
		out = append(out, namedTensor{"lm_head.weight", []int{V, C}, w.LMHead})
	}
	for i, l := range w.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		out = append(out,
			namedTensor{p + "input_layernorm.weight", []int{C}, l.InputNorm},
			namedTensor{p + "post_attention_layernorm.weight", []int{C}, l.PostAttnNorm})
		for _, ln := range []struct {
			name string
			l    model.Linear
		}{
			{"self_attn.q_proj", l.Q}, {"self_attn.k_proj", l.K}, {"self_attn.v_proj", l.V}, {"self_attn.o_proj", l.O},
			{"mlp.gate_proj", l.Gate}, {"mlp.up_proj", l.Up}, {"mlp.down_proj", l.Down},
		} {
			out = append(out, namedTensor{p + ln.name + ".weight", []int{ln.l.Out, ln.l.In}, ln.l.W})
			if ln.l.B != nil {
				out = append(out, namedTensor{p + ln.name + ".bias", []int{ln.l.Out}, ln.l.B})
			}
		}
	}
	names := model.TensorNames(cfg)
	have := make([]string, len(out))
	for i, t := range out {
		have[i] = t.name
		if len(t.data) == 0 {
			return nil, fmt.Errorf("pretrain: tensor %s is empty", t.name)
		}
	}
	slices.Sort(have)
	if !slices.Equal(have, names) {
		return nil, fmt.Errorf("pretrain: weights %v do not match the config's tensors %v", have, names)
	}
	return out, nil
}
