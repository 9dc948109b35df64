package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/safetensors"
	"github.com/gantryml/gantry/internal/tokenizer"
)

const python = "/usr/bin/python3"

// requireTorch skips (or, under GANTRY_REQUIRE_REFERENCES=1, fails) when
// the PyTorch reference cannot run.
func requireTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		if os.Getenv("GANTRY_REQUIRE_REFERENCES") == "1" {
			t.Fatalf("PyTorch reference required: %s -c 'import torch': %v", python, err)
		}
		t.Skipf("no PyTorch at %s (%v); set GANTRY_REQUIRE_REFERENCES=1 to require it", python, err)
	}
}

// recordingNet keeps a copy of every training batch and the gradient
// norm before clipping.
type recordingNet struct {
	*nn.Net
	batches []nn.Batch
	norms   []float64
}

func (r *recordingNet) ForwardBackward(ctx context.Context, b *nn.Batch, scale float32) (float64, int, error) {
	r.batches = append(r.batches, nn.Batch{B: b.B, T: b.T, Tokens: slices.Clone(b.Tokens), Targets: slices.Clone(b.Targets), Lengths: slices.Clone(b.Lengths)})
	l, n, err := r.Net.ForwardBackward(ctx, b, scale)
	var ss float64
	for _, p := range r.Params() {
		for _, g := range p.Grad {
			ss += float64(g) * float64(g)
		}
	}
	r.norms = append(r.norms, math.Sqrt(ss))
	return l, n, err
}

type refBatch struct {
	Tokens  [][]int32 `json:"tokens"`
	Targets [][]int32 `json:"targets"`
	Lengths []int     `json:"lengths"`
}

func toRef(b *nn.Batch) refBatch {
	var r refBatch
	for i := 0; i < b.B; i++ {
		r.Tokens = append(r.Tokens, b.Tokens[i*b.T:(i+1)*b.T])
		r.Targets = append(r.Targets, b.Targets[i*b.T:(i+1)*b.T])
	}
	r.Lengths = b.Lengths
	return r
}

// TestLoopMatchesPyTorch runs the loop (LoRA, warmup then linear decay,
// gradient clipping that engages, mean loss over each batch's tokens) and
// the same steps in PyTorch as Hugging Face's Trainer would take them, and
// compares every step's loss and learning rate; then PyTorch reads the
// saved LoRA adapter, and IA3 and vanilla adapters with moved tensors,
// from their directories (PEFT's format and semantics; Gantry's vanilla
// format) and must get the Go network's loss on a validation batch.
func TestLoopMatchesPyTorch(t *testing.T) {
	requireTorch(t)
	work := t.TempDir()
	mdir := filepath.Join(work, "model")
	src := tinyModelDir(t, 8)
	if err := os.CopyFS(mdir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(mdir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tk, err := tokenizer.Load(mdir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(codeWordData(t, 50, 3))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ReadDataset(f, FromTokenizer(tk), ReadOptions{MaxSeqLen: 64})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	trainEx, valEx := ds.Examples[:40], ds.Examples[40:]

	opt := Options{Method: nn.LoRA, LoRARank: 4, LoRAAlpha: 8, LoRATargets: nn.DefaultLoRATargets, BaseModelName: "tiny"}
	net, err := nn.New(&m.Config, &m.Weights, nn.Options{Method: nn.LoRA, LoRARank: 4, LoRAAlpha: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// B starts at zero in LoRA; start it elsewhere so every tensor has
	// gradients from step 1 and the loss moves.
	var init []safetensors.Tensor
	for i, p := range net.Params() {
		for j := range p.Data {
			if p.Data[j] == 0 {
				p.Data[j] = float32(math.Sin(float64(i*1000+j))) * 0.02
			}
		}
		init = append(init, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: slices.Clone(p.Data)})
	}
	if err := safetensors.WriteFile(filepath.Join(work, "init.safetensors"), init, nil); err != nil {
		t.Fatal(err)
	}
	rec := &recordingNet{Net: net}
	lo := LoopOptions{Epochs: 1, LearningRate: 0.01, BatchSize: 4, WarmupSteps: 3, MaxGradNorm: 0.75, LogInterval: 1, Seed: 2, Shuffle: true}
	res, err := Fit(context.Background(), rec, nn.NewAdamW(net.Params()), trainEx, valEx, lo)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Max(rec.norms) <= lo.MaxGradNorm || slices.Min(rec.norms) > lo.MaxGradNorm {
		t.Fatalf("gradient norms %v: clipping at %v should engage on some steps only", rec.norms, lo.MaxGradNorm)
	}
	if err := MakeAdapter(opt, net.Params()).Save(filepath.Join(work, "adapter")); err != nil {
		t.Fatal(err)
	}
	var bb batchBuilder
	idx := make([]int, len(valEx))
	for i := range idx {
		idx[i] = i
	}
	evalBatch := bb.build(valEx, idx)
	goEval, _, _, err := net.Evaluate(context.Background(), evalBatch)
	if err != nil {
		t.Fatal(err)
	}

	// IA3 and vanilla adapters with moved tensors, evaluated by Go here and
	// by PyTorch from their directories.
	goEvals := []float64{goEval}
	for _, method := range []nn.Method{nn.TFew, nn.Vanilla} {
		mm, err := model.Load(mdir) // vanilla writes into the weights
		if err != nil {
			t.Fatal(err)
		}
		defer mm.Close()
		n, err := nn.New(&mm.Config, &mm.Weights, nn.Options{Method: method, NumLastLayers: 1})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range n.Params() {
			for j := range p.Data {
				p.Data[j] += float32(math.Sin(float64(i*977+j))) * 0.3
			}
		}
		l, _, _, err := n.Evaluate(context.Background(), evalBatch)
		if err != nil {
			t.Fatal(err)
		}
		goEvals = append(goEvals, l)
		o := Options{Method: method, NumLastLayers: 1, BaseModelName: "tiny"}
		if err := MakeAdapter(o, n.Params()).Save(filepath.Join(work, string(method))); err != nil {
			t.Fatal(err)
		}
	}

	run := map[string]any{"lora_alpha": 8, "lora_rank": 4, "lr": lo.LearningRate, "warmup": lo.WarmupSteps, "total": res.TotalSteps,
		"max_norm": lo.MaxGradNorm, "eval": toRef(evalBatch), "adapters": []string{"adapter", "tfew", "vanilla"}}
	var steps []refBatch
	for i := range rec.batches {
		steps = append(steps, toRef(&rec.batches[i]))
	}
	run["steps"] = steps
	b, _ := json.Marshal(run)
	if err := os.WriteFile(filepath.Join(work, "run.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/loopref.py", work).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("loopref.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var ref struct {
		Losses     []float64 `json:"losses"`
		LRs        []float64 `json:"lrs"`
		EvalLosses []float64 `json:"eval_losses"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("loopref.py output %q: %v", out, err)
	}
	if len(ref.Losses) != len(res.History) || len(ref.Losses) != 10 {
		t.Fatalf("%d reference steps, %d Go points", len(ref.Losses), len(res.History))
	}
	for i, m := range res.History {
		if d := math.Abs(m.TrainLoss-ref.Losses[i]) / ref.Losses[i]; d > 1e-5 {
			t.Errorf("step %d: loss %.8f, PyTorch %.8f (rel %.2g)", m.Step, m.TrainLoss, ref.Losses[i], d)
		}
		if math.Abs(m.LearningRate-ref.LRs[i]) > 1e-12 {
			t.Errorf("step %d: lr %v, PyTorch %v", m.Step, m.LearningRate, ref.LRs[i])
		}
	}
	t.Logf("losses: first %.6f last %.6f; PyTorch %.6f %.6f; adapters %.6f vs PyTorch %.6f",
		res.History[0].TrainLoss, res.History[9].TrainLoss, ref.Losses[0], ref.Losses[9], goEvals, ref.EvalLosses)
	if len(ref.EvalLosses) != len(goEvals) {
		t.Fatalf("%d adapter losses from PyTorch, want %d", len(ref.EvalLosses), len(goEvals))
	}
	for i, kind := range []string{"lora", "tfew", "vanilla"} {
		if d := math.Abs(goEvals[i]-ref.EvalLosses[i]) / ref.EvalLosses[i]; d > 1e-5 {
			t.Errorf("saved %s adapter: PyTorch loss %.8f, Go %.8f (rel %.2g)", kind, ref.EvalLosses[i], goEvals[i], d)
		}
	}
	if res.History[9].TrainLoss >= res.History[0].TrainLoss {
		t.Errorf("loss did not fall: %v → %v", res.History[0].TrainLoss, res.History[9].TrainLoss)
	}
}
