package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// TestMergeMatchesAdapterForward checks, for each method, that the loss of
// the base model with the adapter attached (nn's adapter forward) equals
// the loss of the merged weights run plainly.
func TestMergeMatchesAdapterForward(t *testing.T) {
	dir := tinyModelDir(t, 4)
	batch := &nn.Batch{B: 2, T: 12, Lengths: []int{12, 9}}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 24; i++ {
		batch.Tokens = append(batch.Tokens, int32(r.IntN(256)))
		tg := int32(r.IntN(256))
		if i >= 12+9 {
			tg = -1
		}
		batch.Targets = append(batch.Targets, tg)
	}
	for _, method := range []nn.Method{nn.LoRA, nn.TFew, nn.Vanilla} {
		t.Run(string(method), func(t *testing.T) {
			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			opt := Options{Method: method, ModelDir: dir}
			opt, err = opt.withDefaults(&m.Config)
			if err != nil {
				t.Fatal(err)
			}
			net, err := nn.New(&m.Config, &m.Weights, nn.Options{Method: method, LoRARank: opt.LoRARank, LoRAAlpha: 16, NumLastLayers: 1, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			// Move every trainable tensor away from its initial value.
			for _, p := range net.Params() {
				for i := range p.Data {
					p.Data[i] += float32(r.NormFloat64() * 0.5)
				}
			}
			want, _, _, err := net.Evaluate(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			opt.LoRAAlpha, opt.NumLastLayers = 16, 1
			a := MakeAdapter(opt, net.Params())
			adir := t.TempDir()
			if err := a.Save(adir); err != nil {
				t.Fatal(err)
			}

			base, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			if err := a.Merge(&base.Config, &base.Weights); err != nil {
				t.Fatal(err)
			}
			plain, err := nn.New(&base.Config, &base.Weights, nn.Options{Method: nn.TFew})
			if err != nil {
				t.Fatal(err)
			}
			got, _, _, err := plain.Evaluate(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("adapter loss %.9g, merged %.9g, base %.9g", want, got, baseLoss(t, dir, batch))
			if math.Abs(got-want) > 2e-6*math.Abs(want) {
				t.Errorf("merged loss %v, adapter loss %v", got, want)
			}
			// And the base alone differs, so the check has teeth.
			if bl := baseLoss(t, dir, batch); math.Abs(bl-want) < 1e-4*math.Abs(want) {
				t.Errorf("base loss %v equals the adapter's %v", bl, want)
			}
			fresh, _ := model.Load(dir)
			defer fresh.Close()
			// An adapter of this kind restarts training through --init-adapter.
			if method != nn.Vanilla {
				again, _ := nn.New(&fresh.Config, &fresh.Weights, nn.Options{Method: method, LoRARank: opt.LoRARank, LoRAAlpha: 16, Seed: 9})
				if err := LoadInitAdapter(adir, method, again.Params()); err != nil {
					t.Fatal(err)
				}
				for i, p := range again.Params() {
					if !slicesEqual(p.Data, net.Params()[i].Data) {
						t.Fatalf("init adapter: %s not loaded", p.Name)
					}
				}
			} else if err := LoadInitAdapter(adir, nn.LoRA, net.Params()); err == nil {
				t.Error("a vanilla adapter was accepted as a LoRA init")
			}
		})
	}
}

// baseLoss is the summed loss of the base model in dir on b.
func baseLoss(t *testing.T, dir string, b *nn.Batch) float64 {
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n, err := nn.New(&m.Config, &m.Weights, nn.Options{Method: nn.TFew})
	if err != nil {
		t.Fatal(err)
	}
	l, _, _, err := n.Evaluate(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestRunResumeBitExact kills a real training run (LoRA with dropout) by
// cancelling its context, resumes it in a fresh Run, and compares the
// adapter file and the metrics with an uninterrupted run.
func TestRunResumeBitExact(t *testing.T) {
	dir := tinyModelDir(t, 5)
	data := codeWordData(t, 60, 7)
	base := Options{ModelDir: dir, DataPath: data, Method: nn.LoRA, LoRADropout: 0.1}
	base.Epochs, base.LearningRate, base.BatchSize, base.Seed, base.Shuffle, base.LogInterval = 3, 0.01, 8, 5, true, 4
	base.EarlyStoppingPatience, base.CheckpointEvery = 3, 4

	full := base
	full.OutDir = t.TempDir()
	want, err := Run(context.Background(), full)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	killed := base
	killed.OutDir = t.TempDir()
	killed.CheckpointDir = t.TempDir()
	killed.OnProgress = func(p Progress) {
		if p.Step == 10 {
			cancel()
		}
	}
	if _, err := Run(ctx, killed); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: %v", err)
	}
	resumed := killed
	resumed.OnProgress = nil
	resumed.Resume = true
	got, err := Run(context.Background(), resumed)
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := os.ReadFile(filepath.Join(full.OutDir, "adapter_model.safetensors"))
	gb, _ := os.ReadFile(filepath.Join(resumed.OutDir, "adapter_model.safetensors"))
	if len(wb) == 0 || !bytes.Equal(wb, gb) {
		t.Error("resumed adapter differs from the uninterrupted run's")
	}
	if got.FinalLoss != want.FinalLoss || got.FinalAccuracy != want.FinalAccuracy || got.Steps != want.Steps {
		t.Errorf("resumed %+v, want %+v", got, want)
	}
	gh, wh := stripTiming(got.History), stripTiming(want.History)
	if len(gh) != len(wh) {
		t.Fatalf("%d metric points, want %d", len(gh), len(wh))
	}
	for i := range gh {
		g, w := gh[i], wh[i]
		if g.Step != w.Step || g.TrainLoss != w.TrainLoss || g.LearningRate != w.LearningRate ||
			(g.ValLoss == nil) != (w.ValLoss == nil) || (g.ValLoss != nil && (*g.ValLoss != *w.ValLoss || *g.ValAccuracy != *w.ValAccuracy)) {
			t.Errorf("point %d: %+v, want %+v", i, g, w)
		}
	}
}

// cancelInside cancels the run's context from inside the step'th
// ForwardBackward, so the network stops mid-step.
type cancelInside struct {
	*nn.Net
	step, calls int
	cancel      func()
}

func (c *cancelInside) ForwardBackward(ctx context.Context, b *nn.Batch, scale float32) (float64, int, error) {
	c.calls++
	if c.calls == c.step {
		c.cancel()
	}
	return c.Net.ForwardBackward(ctx, b, scale)
}

// TestCancelMidStepResumes stops a real network (LoRA with dropout) in the
// middle of a step and checks that the checkpoint written on the way out
// resumes to the uninterrupted result.
func TestCancelMidStepResumes(t *testing.T) {
	dir := tinyModelDir(t, 6)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tk, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(codeWordData(t, 40, 8))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ReadDataset(f, FromTokenizer(tk), ReadOptions{MaxSeqLen: 64})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	newNet := func() *nn.Net {
		n, err := nn.New(&m.Config, &m.Weights, nn.Options{Method: nn.LoRA, LoRARank: 4, LoRAAlpha: 8, LoRADropout: 0.2, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	lo := LoopOptions{Epochs: 2, LearningRate: 0.01, BatchSize: 4, MaxGradNorm: 1, LogInterval: 3, Seed: 4, Shuffle: true, EarlyStoppingPatience: 5}
	trainEx, valEx := ds.Examples[:32], ds.Examples[32:]

	full := newNet()
	want, err := Fit(context.Background(), full, nn.NewAdamW(full.Params()), trainEx, valEx, lo)
	if err != nil {
		t.Fatal(err)
	}
	lo.CheckpointDir, lo.Resume = t.TempDir(), true
	ctx, cancel := context.WithCancel(context.Background())
	n := newNet()
	_, err = Fit(ctx, &cancelInside{Net: n, step: 6, cancel: cancel}, nn.NewAdamW(n.Params()), trainEx, valEx, lo)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled run: %v", err)
	}
	latest, err := os.ReadFile(filepath.Join(lo.CheckpointDir, "LATEST"))
	if err != nil || string(bytes.TrimSpace(latest)) != "step-00000005" {
		t.Fatalf("LATEST = %q (%v), want step-00000005", latest, err)
	}
	n = newNet()
	got, err := Fit(context.Background(), n, nn.NewAdamW(n.Params()), trainEx, valEx, lo)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range n.Params() {
		if !slicesEqual(p.Data, full.Params()[i].Data) {
			t.Fatalf("%s differs from the uninterrupted run", p.Name)
		}
	}
	if got.FinalLoss != want.FinalLoss || got.Steps != want.Steps {
		t.Errorf("resumed %+v, want %+v", got, want)
	}
}
