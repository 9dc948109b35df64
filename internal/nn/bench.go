package nn

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/tensor"
)

// BenchPresets lists the preset names BenchTrain accepts (internal/model's
// presets), sorted.
func BenchPresets() []string { return model.Presets() }

// presetConfig returns the parsed config of a model preset.
func presetConfig(name string) (*model.Config, error) {
	m, err := model.PresetConfig(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	cfg, err := model.ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	return &cfg, nil
}

// RandomWeights returns weights of cfg's shape (with the biases its
// architecture has) drawn from N(0, 0.02²) for matrices and biases and 1 + N(0, 0.02²) for norms, from seed. The LM head
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
	qkv, ob, mb := cfg.QKVBias(), cfg.OBias(), cfg.MLPBias
	for range cfg.NumHiddenLayers {
		w.Layers = append(w.Layers, model.Layer{
			InputNorm: fill(C, 1), PostAttnNorm: fill(C, 1),
			Q: lin(H*D, C, qkv), K: lin(KV*D, C, qkv), V: lin(KV*D, C, qkv), O: lin(C, H*D, ob),
			Gate: lin(I, C, mb), Up: lin(I, C, mb), Down: lin(C, I, mb),
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
	Steps         int       // timed steps after one warm-up step
	Threads       int       // 0: GOMAXPROCS
	NumLastLayers int       // vanilla; 0 means all layers
	Precision     Precision // "" means FP32
}

// BenchResult is what BenchTrain measured. GFLOPS counts StepFLOPs's
// convention (2·m·n·k per product, attention included) over the timed
// steps; PeakGFLOPS is tensor.MeasurePeakGFLOPS's FMA-loop throughput on
// the same thread count.
type BenchResult struct {
	Preset      string  `json:"preset"`
	Method      Method  `json:"method"`
	Seq         int     `json:"seq"`
	Batch       int     `json:"batch"`
	Steps       int     `json:"steps"`
	Threads     int     `json:"threads"`
	StepSeconds float64 `json:"step_seconds"`
	// TokensPerSec is the mean over the timed steps (all their tokens over
	// all their time); Best and Median are per step, to compare with
	// references that report a best or median step (bench/torch_train.py).
	TokensPerSec       float64 `json:"tokens_per_sec"`
	BestTokensPerSec   float64 `json:"best_tokens_per_sec"`
	MedianTokensPerSec float64 `json:"median_tokens_per_sec"`
	GFLOPS             float64 `json:"gflops"`
	PeakGFLOPS         float64 `json:"peak_gflops"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	// StepPeakRSSBytes is the peak RSS over the timed steps alone (the
	// kernel's peak is reset after the warm-up step and a GC), which leaves
	// out building the network: under BF16 the float32 weights exist only
	// until they are converted. 0 where the reset is not possible.
	StepPeakRSSBytes int64   `json:"step_peak_rss_bytes"`
	CPUSecPerStep    float64 `json:"cpu_seconds_per_step"`
	Precision        string  `json:"precision"`
	// Kernel is the fp32 SGEMM kernel (tensor.Kernel) and BF16Kernel,
	// under BF16, the kernel of the bf16 products: amx, vdpbf16ps or widen.
	Kernel     string  `json:"kernel"`
	BF16Kernel string  `json:"bf16_kernel,omitempty"`
	FirstLoss  float64 `json:"first_loss"`
	LastLoss   float64 `json:"last_loss"`
}

// BenchTrain builds the preset's shape with random weights and times
// Steps training steps (ZeroGrad, ForwardBackward, AdamW) on random
// full-length sequences after one warm-up step. Threads > 0 sets
// GOMAXPROCS for the process.
func BenchTrain(ctx context.Context, o BenchOptions) (BenchResult, error) {
	cfg, err := presetConfig(o.Preset)
	if err != nil {
		return BenchResult{}, err
	}
	if o.Seq <= 0 || o.Batch <= 0 || o.Steps <= 0 {
		return BenchResult{}, fmt.Errorf("%w: seq %d, batch %d, steps %d must be positive", ErrOptions, o.Seq, o.Batch, o.Steps)
	}
	if o.Threads > 0 {
		runtime.GOMAXPROCS(o.Threads)
	}
	threads := runtime.GOMAXPROCS(0)
	prec, err := ParsePrecision(string(o.Precision))
	if err != nil {
		return BenchResult{}, err
	}
	opt := Options{Method: o.Method, LoRARank: 8, LoRAAlpha: 8, LoRADropout: 0.1, Seed: 1, Threads: threads, Precision: prec, ReleaseFrozen: true}
	if o.Method == Vanilla {
		opt.NumLastLayers = o.NumLastLayers
	}
	net, err := New(cfg, RandomWeights(cfg, 1), opt) // the frozen float32 weights are released as they are packed or converted
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
	res := BenchResult{Preset: o.Preset, Method: o.Method, Seq: o.Seq, Batch: o.Batch, Steps: o.Steps, Threads: threads, Precision: string(prec)}
	tcfg := tensor.Config{Threads: threads}.Resolve()
	res.Kernel = tcfg.Kernel.String()
	if prec == BF16 {
		res.BF16Kernel = tcfg.BF16Kernel()
	}
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
	peak0 := peakRSS() // before the reset below
	runtime.GC()
	debug.FreeOSMemory()
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	cpu0 := processCPU()
	start := time.Now()
	times := make([]float64, o.Steps)
	for i := range o.Steps {
		t0 := time.Now()
		if res.LastLoss, err = step(); err != nil {
			return res, err
		}
		times[i] = time.Since(t0).Seconds()
	}
	sec := time.Since(start).Seconds()
	slices.Sort(times)
	res.BestTokensPerSec = float64(N) / times[0]
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + med) / 2
	}
	res.MedianTokensPerSec = float64(N) / med
	res.CPUSecPerStep = (processCPU() - cpu0) / float64(o.Steps)
	if resetPeak {
		res.StepPeakRSSBytes = peakRSS()
	}
	res.StepSeconds = sec / float64(o.Steps)
	res.TokensPerSec = float64(N*o.Steps) / sec
	res.GFLOPS = net.StepFLOPs(b) * float64(o.Steps) / sec / 1e9
	res.PeakRSSBytes = max(peakRSS(), peak0)
	res.PeakGFLOPS = tensor.MeasurePeakGFLOPS(tensor.Best(), threads, time.Second)
	if math.IsNaN(res.LastLoss) {
		return res, fmt.Errorf("bench: loss is NaN")
	}
	return res, nil
}

// processCPU returns the process's user+system CPU time in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
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
