package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/peft"
)

// Defaults Run applies to zero fields (the CLI's defaults, which follow
// OCI's).
const (
	DefaultEpochs        = 3
	DefaultBatchSize     = 8
	DefaultLoRARank      = 8
	DefaultLoRAAlpha     = 8
	DefaultLoRALR        = 0.0002
	DefaultTFewLR        = 0.01
	DefaultVanillaLR     = 0.01
	DefaultMaxGradNorm   = 1.0
	DefaultMaxLastLayers = 15
	DefaultMaxSeqLen     = 2048
)

// Options configure a fine-tuning run. Zero fields take the defaults above
// (learning rate by method, NumLastLayers min(15, layers), MaxSeqLen
// min(model context, 2048), MaxGradNorm 1); zero LoRADropout, early
// stopping patience, warmup and weight decay mean none.
type Options struct {
	LoopOptions

	// ModelDir is the base model (config.json, safetensors, tokenizer);
	// Run loads it, RunModel takes it loaded.
	ModelDir string
	// BaseModelName is written as the adapter's base model; default ModelDir.
	BaseModelName string
	// Data is the JSON Lines dataset; when nil DataPath is opened.
	Data     io.Reader
	DataPath string
	// Dataset, when not nil, is the dataset already read (ReadDataset
	// with this run's MaxSeqLen and tokenizer); Data and DataPath are
	// then ignored, so a caller that validated the file does not pay for
	// reading and tokenizing it twice.
	Dataset *Dataset
	// OutDir receives the adapter ("" : not written).
	OutDir string

	Method        nn.Method
	LoRARank      int
	LoRAAlpha     float64
	LoRADropout   float64
	LoRATargets   []string // default nn.DefaultLoRATargets
	NumLastLayers int
	WeightDecay   float64
	MaxSeqLen     int
	// InitAdapter is a LoRA or IA3 adapter directory whose tensors
	// replace the initial adapter parameters (same method and shapes).
	InitAdapter string
	Threads     int // network threads; 0: GOMAXPROCS
	// Precision of the frozen weights: "" or nn.FP32 (exact), or nn.BF16
	// (stored as bfloat16 and multiplied by tensor.SgemmBF16; trainable
	// parameters, gradients and optimiser state stay float32).
	Precision nn.Precision

	// ownsWeights says the weights passed to RunModel are Run's own, so
	// their frozen float32 tensors are dropped once the network has packed
	// or converted them (nn.Options.ReleaseFrozen).
	ownsWeights bool
}

// Result is a finished run.
type Result struct {
	FinalAccuracy     float64   `json:"final_accuracy"`
	FinalLoss         float64   `json:"final_loss"`
	Steps             int       `json:"steps"`
	TotalSteps        int       `json:"total_steps"`
	BestStep          int       `json:"best_step"`
	EpochsCompleted   int       `json:"epochs_completed"`
	EarlyStopped      bool      `json:"early_stopped"`
	TrainExamples     int       `json:"train_examples"`
	ValExamples       int       `json:"val_examples"`
	TruncatedExamples int       `json:"truncated_examples"`
	History           []Metrics `json:"-"`
	// Adapter is the trained adapter (also written to OutDir when set).
	Adapter *peft.Adapter `json:"-"`
}

// withDefaults returns o with the zero fields filled in for cfg.
func (o Options) withDefaults(cfg *model.Config) (Options, error) {
	switch o.Method {
	case nn.LoRA, nn.TFew, nn.Vanilla:
	case "":
		return o, fmt.Errorf("no fine-tuning method given (want lora, tfew or vanilla)")
	default:
		return o, fmt.Errorf("unknown fine-tuning method %q (want lora, tfew or vanilla)", o.Method)
	}
	if o.Epochs == 0 {
		o.Epochs = DefaultEpochs
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.LearningRate == 0 {
		o.LearningRate = map[nn.Method]float64{nn.LoRA: DefaultLoRALR, nn.TFew: DefaultTFewLR, nn.Vanilla: DefaultVanillaLR}[o.Method]
	}
	if o.MaxGradNorm == 0 {
		o.MaxGradNorm = DefaultMaxGradNorm
	}
	if o.LoRARank == 0 {
		o.LoRARank = DefaultLoRARank
	}
	if o.LoRAAlpha == 0 {
		o.LoRAAlpha = DefaultLoRAAlpha
	}
	if len(o.LoRATargets) == 0 {
		o.LoRATargets = nn.DefaultLoRATargets
	}
	if o.NumLastLayers == 0 {
		o.NumLastLayers = min(DefaultMaxLastLayers, cfg.NumHiddenLayers)
	}
	if o.NumLastLayers < 0 || o.NumLastLayers > cfg.NumHiddenLayers {
		return o, fmt.Errorf("num last layers %d: the model has %d layers", o.NumLastLayers, cfg.NumHiddenLayers)
	}
	if o.MaxSeqLen == 0 {
		o.MaxSeqLen = DefaultMaxSeqLen
		if c := cfg.MaxPositionEmbeddings; c > 0 {
			o.MaxSeqLen = min(c, DefaultMaxSeqLen)
		}
	}
	if o.MaxSeqLen < 2 {
		return o, fmt.Errorf("max sequence length %d: must be at least 2", o.MaxSeqLen)
	}
	if c := cfg.MaxPositionEmbeddings; c > 0 && o.MaxSeqLen > c {
		return o, fmt.Errorf("max sequence length %d exceeds the model's context of %d", o.MaxSeqLen, c)
	}
	if o.LoRARank < 0 || o.LoRAAlpha < 0 || o.LoRADropout < 0 || o.LoRADropout >= 1 {
		return o, fmt.Errorf("LoRA r %d, alpha %v, dropout %v: want r, alpha > 0 and dropout in [0, 1)", o.LoRARank, o.LoRAAlpha, o.LoRADropout)
	}
	if o.WeightDecay < 0 {
		return o, fmt.Errorf("weight decay %v: must not be negative", o.WeightDecay)
	}
	p, err := nn.ParsePrecision(string(o.Precision))
	if err != nil {
		return o, err
	}
	o.Precision = p
	if o.BaseModelName == "" {
		o.BaseModelName = o.ModelDir
	}
	return o, nil
}

// RunModel fine-tunes the model (cfg, w) with tokenizer tok: it reads and
// splits the dataset, trains under opt (see Fit), and returns the result
// with the adapter, written to opt.OutDir when set. For Vanilla the
// trained layers of w are updated in place. A bad dataset is a
// *DatasetError listing every bad line, returned before training starts.
func RunModel(ctx context.Context, cfg *model.Config, w *model.Weights, tok Tokenizer, opt Options) (*Result, error) {
	opt, err := opt.withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ds := opt.Dataset
	if ds == nil {
		if ds, err = readDataset(opt, tok); err != nil {
			return nil, err
		}
	}
	trainIdx, valIdx := Split(len(ds.Examples), opt.Seed, opt.Shuffle)
	pick := func(idx []int) []Example {
		out := make([]Example, len(idx))
		for i, j := range idx {
			out[i] = ds.Examples[j]
		}
		return out
	}
	trainEx, valEx := pick(trainIdx), pick(valIdx)
	log.Info("dataset", "train", len(trainEx), "validation", len(valEx), "truncated", ds.Truncated, "max_seq_len", opt.MaxSeqLen)

	net, err := nn.New(cfg, w, nn.Options{
		Method: opt.Method, LoRARank: opt.LoRARank, LoRAAlpha: opt.LoRAAlpha, LoRADropout: opt.LoRADropout,
		LoRATargets: opt.LoRATargets, NumLastLayers: opt.NumLastLayers, Seed: opt.Seed, Threads: opt.Threads,
		Precision: opt.Precision, ReleaseFrozen: opt.ownsWeights,
	})
	if err != nil {
		return nil, fmt.Errorf("build network: %w", err)
	}
	if opt.ownsWeights {
		// The network released w's frozen float32 tensors as it packed
		// or converted them (nn.Options.ReleaseFrozen); return the pages
		// its own copies did not reuse.
		debug.FreeOSMemory()
	}
	if opt.InitAdapter != "" {
		if err := LoadInitAdapter(opt.InitAdapter, opt.Method, net.Params()); err != nil {
			return nil, err
		}
	}
	optim := nn.NewAdamW(net.Params())
	optim.WeightDecay = opt.WeightDecay
	cfgJSON, _ := json.Marshal(cfg)
	opt.RunKey = fmt.Sprintf("method=%s r=%d alpha=%v dropout=%v targets=%q last=%d wd=%v maxlen=%d init=%q model=%s %s",
		opt.Method, opt.LoRARank, opt.LoRAAlpha, opt.LoRADropout, opt.LoRATargets, opt.NumLastLayers, opt.WeightDecay,
		opt.MaxSeqLen, opt.InitAdapter, cfgJSON, opt.RunKey)
	if opt.Precision != nn.FP32 {
		opt.RunKey = "precision=" + string(opt.Precision) + " " + opt.RunKey
	}
	fr, err := Fit(ctx, net, optim, trainEx, valEx, opt.LoopOptions)
	if err != nil {
		return nil, err
	}
	res := &Result{
		FinalAccuracy: fr.FinalAccuracy, FinalLoss: fr.FinalLoss, Steps: fr.Steps, TotalSteps: fr.TotalSteps,
		BestStep: fr.BestStep, EpochsCompleted: fr.EpochsCompleted, EarlyStopped: fr.EarlyStopped,
		TrainExamples: len(trainEx), ValExamples: len(valEx), TruncatedExamples: ds.Truncated, History: fr.History,
	}
	res.Adapter = MakeAdapter(opt, net.Params())
	if opt.OutDir != "" {
		if err := res.Adapter.Save(opt.OutDir); err != nil {
			return nil, err
		}
		log.Info("adapter written", "dir", opt.OutDir, "kind", res.Adapter.Kind)
	}
	return res, nil
}

var layerIndex = regexp.MustCompile(`^model\.layers\.(\d+)\.`)

// MakeAdapter packages trained parameters (nn's names and shapes, copied)
// as the method's adapter.
func MakeAdapter(opt Options, params []*nn.Param) *peft.Adapter {
	ts := make([]peft.Tensor, len(params))
	var layers []int
	for i, p := range params {
		ts[i] = peft.Tensor{Name: p.Name, Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data)}
		if m := layerIndex.FindStringSubmatch(p.Name); m != nil {
			l, _ := strconv.Atoi(m[1])
			if !slices.Contains(layers, l) {
				layers = append(layers, l)
			}
		}
	}
	switch opt.Method {
	case nn.LoRA:
		return peft.NewLoRA(opt.BaseModelName, opt.LoRARank, opt.LoRAAlpha, opt.LoRADropout, opt.LoRATargets, ts)
	case nn.TFew:
		return peft.NewIA3(opt.BaseModelName, ts)
	default:
		return peft.NewVanilla(opt.BaseModelName, opt.NumLastLayers, layers, ts)
	}
}

// LoadInitAdapter copies the tensors of the adapter in dir into params by
// name. The adapter must be of the method's kind (LoRA for lora, IA3 for
// tfew) and hold exactly the parameters' names with their shapes.
func LoadInitAdapter(dir string, method nn.Method, params []*nn.Param) error {
	a, err := peft.Load(dir)
	if err != nil {
		return fmt.Errorf("init adapter: %w", err)
	}
	want := map[nn.Method]peft.Kind{nn.LoRA: peft.LoRA, nn.TFew: peft.IA3}[method]
	if want == "" || a.Kind != want {
		return fmt.Errorf("init adapter %s: a %s adapter cannot start %s training", dir, a.Kind, method)
	}
	if len(a.Tensors) != len(params) {
		return fmt.Errorf("init adapter %s: %d tensors, the run trains %d (different targets or model?)", dir, len(a.Tensors), len(params))
	}
	for _, p := range params {
		t, ok := a.Tensor(p.Name)
		if !ok {
			return fmt.Errorf("init adapter %s: no tensor %q", dir, p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("init adapter %s: tensor %q has shape %v, the run needs %v", dir, p.Name, t.Shape, p.Shape)
		}
		copy(p.Data, t.Data)
	}
	return nil
}

// readDataset reads opt.Data, or the file at opt.DataPath.
func readDataset(opt Options, tok Tokenizer) (*Dataset, error) {
	data := opt.Data
	if data == nil {
		if opt.DataPath == "" {
			return nil, fmt.Errorf("no dataset given")
		}
		f, err := os.Open(opt.DataPath)
		if err != nil {
			return nil, fmt.Errorf("open dataset: %w", err)
		}
		defer f.Close()
		data = f
	}
	return ReadDataset(data, tok, ReadOptions{MaxSeqLen: opt.MaxSeqLen})
}
