package nn

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/tensor"
)

// benchPresets are the model shapes BenchTrain knows. internal/model has no
// preset table yet, so this one is private; the shapes follow the public
// config.json files of the models named.
var benchPresets = map[string]model.Config{
	"tiny": {
		ModelType: "llama", HiddenSize: 64, IntermediateSize: 172, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 512, MaxPositionEmbeddings: 2048,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true, HiddenAct: "silu",
	},
	"smollm2-135m": {
		ModelType: "llama", HiddenSize: 576, IntermediateSize: 1536, NumHiddenLayers: 30,
		NumAttentionHeads: 9, NumKeyValueHeads: 3, VocabSize: 49152, MaxPositionEmbeddings: 8192,
		RMSNormEps: 1e-5, RopeTheta: 100000, TieWordEmbeddings: true, HiddenAct: "silu",
	},
	"smollm2-360m": {
		ModelType: "llama", HiddenSize: 960, IntermediateSize: 2560, NumHiddenLayers: 32,
		NumAttentionHeads: 15, NumKeyValueHeads: 5, VocabSize: 49152, MaxPositionEmbeddings: 8192,
		RMSNormEps: 1e-5, RopeTheta: 100000, TieWordEmbeddings: true, HiddenAct: "silu",
	},
	"llama-3.2-1b": {
		ModelType: "llama", HiddenSize: 2048, IntermediateSize: 8192, NumHiddenLayers: 16,
		NumAttentionHeads: 32, NumKeyValueHeads: 8, HeadDim: 64, VocabSize: 128256, MaxPositionEmbeddings: 131072,
		RMSNormEps: 1e-5, RopeTheta: 500000, TieWordEmbeddings: true, HiddenAct: "silu",
		RopeScaling: &model.RopeScaling{RopeType: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192},
	},
}

// BenchPresets lists the preset names BenchTrain accepts, sorted.
func BenchPresets() []string {
	names := make([]string, 0, len(benchPresets))
	for k := range benchPresets {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// RandomWeights returns weights of cfg's shape drawn from N(0, 0.02²) for
// matrices and biases and 1 + N(0, 0.02²) for norms, from seed. The LM head
// shares the embedding when cfg ties them.
func RandomWeights(cfg *model.Config, seed uint64) *model.Weights {
	rng := rand.New(rand.NewPCG(seed, 0x77656967687473))
	fill := func(n int, mean float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(mean + 0.02*rng.NormFloat64())
		}
		return x
	}
	C, I, D := cfg.HiddenSize, cfg.IntermediateSize, cfg.Dim()
	H, KV := cfg.NumAttentionHeads, cfg.NumKeyValueHeads
	if KV == 0 {
		KV = H
	}
	lin := func(out, in int, bias bool) model.Linear {
		l := model.Linear{W: fill(out*in, 0), Out: out, In: in}
		if bias {
			l.B = fill(out, 0)
		}
		return l
	}
	w := &model.Weights{Embed: fill(cfg.VocabSize*C, 0)}
	for range cfg.NumHiddenLayers {
		ab := cfg.AttentionBias
		w.Layers = append(w.Layers, model.Layer{
			InputNorm: fill(C, 1), PostAttnNorm: fill(C, 1),
			Q: lin(H*D, C, ab), K: lin(KV*D, C, ab), V: lin(KV*D, C, ab), O: lin(C, H*D, false),
			Gate: lin(I, C, false), Up: lin(I, C, false), Down: lin(C, I, false),
		})
	}
	w.Norm = fill(C, 1)
	if cfg.TieWordEmbeddings {
		w.LMHead = w.Embed
	} else {
		w.LMHead = fill(cfg.VocabSize*C, 0)
	}
	return w
}

// BenchOptions configure BenchTrain.
type BenchOptions struct {
	Preset        string
	Method        Method
	Seq, Batch    int
	Steps         int // timed steps after one warm-up step
	Threads       int // 0: GOMAXPROCS
	NumLastLayers int // vanilla; 0 means all layers
}

// BenchResult is what BenchTrain measured. GFLOPS counts StepFLOPs's
// convention (2·m·n·k per product, attention included) over the timed
// steps; PeakGFLOPS is tensor.MeasurePeakGFLOPS's FMA-loop throughput on
// the same thread count.
type BenchResult struct {
	Preset       string  `json:"preset"`
	Method       Method  `json:"method"`
	Seq          int     `json:"seq"`
	Batch        int     `json:"batch"`
	Steps        int     `json:"steps"`
	Threads      int     `json:"threads"`
	StepSeconds  float64 `json:"step_seconds"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	GFLOPS       float64 `json:"gflops"`
	PeakGFLOPS   float64 `json:"peak_gflops"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Precision    string  `json:"precision"`
	FirstLoss    float64 `json:"first_loss"`
	LastLoss     float64 `json:"last_loss"`
}

// BenchTrain builds the preset's shape with random weights and times
// Steps training steps (ZeroGrad, ForwardBackward, AdamW) on random
// full-length sequences after one warm-up step. Threads > 0 sets
// GOMAXPROCS for the process.
func BenchTrain(ctx context.Context, o BenchOptions) (BenchResult, error) {
	cfg, ok := benchPresets[o.Preset]
	if !ok {
		return BenchResult{}, fmt.Errorf("%w: unknown preset %q (want one of %v)", ErrOptions, o.Preset, BenchPresets())
	}
	if o.Seq <= 0 || o.Batch <= 0 || o.Steps <= 0 {
		return BenchResult{}, fmt.Errorf("%w: seq %d, batch %d, steps %d must be positive", ErrOptions, o.Seq, o.Batch, o.Steps)
	}
	if o.Threads > 0 {
		runtime.GOMAXPROCS(o.Threads)
	}
	threads := runtime.GOMAXPROCS(0)
	opt := Options{Method: o.Method, LoRARank: 8, LoRAAlpha: 8, LoRADropout: 0.1, Seed: 1, Threads: threads}
	if o.Method == Vanilla {
		opt.NumLastLayers = o.NumLastLayers
	}
	w := RandomWeights(&cfg, 1)
	net, err := New(&cfg, w, opt)
	if err != nil {
		return BenchResult{}, err
	}
	rng := rand.New(rand.NewPCG(2, 3))
	N := o.Batch * o.Seq
	b := &Batch{B: o.Batch, T: o.Seq, Tokens: make([]int32, N), Targets: make([]int32, N)}
	for i := range b.Tokens {
		b.Tokens[i] = int32(rng.IntN(cfg.VocabSize))
	}
	for i := range b.Targets {
		if (i+1)%o.Seq == 0 {
			b.Targets[i] = -1
		} else {
			b.Targets[i] = b.Tokens[i+1]
		}
	}
	opti := NewAdamW(net.Params())
	res := BenchResult{Preset: o.Preset, Method: o.Method, Seq: o.Seq, Batch: o.Batch, Steps: o.Steps, Threads: threads, Precision: "fp32"}
	step := func() (float64, error) {
		net.ZeroGrad()
		loss, tok, err := net.ForwardBackward(ctx, b, 1/float32(max(1, N-o.Batch)))
		if err != nil {
			return 0, err
		}
		opti.Step(1e-4)
		return loss / float64(max(tok, 1)), nil
	}
	if res.FirstLoss, err = step(); err != nil {
		return res, err
	}
	start := time.Now()
	for range o.Steps {
		if res.LastLoss, err = step(); err != nil {
			return res, err
		}
	}
	sec := time.Since(start).Seconds()
	res.StepSeconds = sec / float64(o.Steps)
	res.TokensPerSec = float64(N*o.Steps) / sec
	res.GFLOPS = net.StepFLOPs(b) * float64(o.Steps) / sec / 1e9
	res.PeakRSSBytes = peakRSS()
	res.PeakGFLOPS = tensor.MeasurePeakGFLOPS(tensor.Best(), threads, time.Second)
	if math.IsNaN(res.LastLoss) {
		return res, fmt.Errorf("bench: loss is NaN")
	}
	return res, nil
}

// peakRSS reads VmHWM from /proc/self/status in bytes, or 0 where absent.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
