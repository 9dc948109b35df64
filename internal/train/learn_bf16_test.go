package train

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
)

// TestItLearnsBF16 trains the code-word task of TestItLearns with LoRA
// twice, with float32 and with bfloat16 frozen weights, and requires the
// bf16 run's final validation loss within 1% of the float32 run's.
func TestItLearnsBF16(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model twice")
	}
	dir := tinyModelDir(t, 1)
	data := codeWordData(t, 120, 2)
	var loss [2]float64
	for i, p := range []nn.Precision{nn.FP32, nn.BF16} {
		opt := Options{ModelDir: dir, DataPath: data, Method: nn.LoRA, Precision: p}
		opt.Epochs, opt.LearningRate, opt.BatchSize, opt.Seed, opt.Shuffle, opt.LogInterval = 10, 0.01, 8, 3, true, 10
		res, err := Run(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		loss[i] = res.FinalLoss
		t.Logf("%s: %d steps, final val loss %.5f acc %.3f", p, res.Steps, res.FinalLoss, res.FinalAccuracy)
		if res.FinalAccuracy < 0.9 {
			t.Errorf("%s: validation accuracy %.3f, want ≥ 0.9", p, res.FinalAccuracy)
		}
	}
	if d := math.Abs(loss[1]-loss[0]) / loss[0]; d > 0.01 {
		t.Errorf("final validation loss fp32 %.5f, bf16 %.5f: %.2f%% apart, want ≤ 1%%", loss[0], loss[1], 100*d)
	}
}

// TestReleaseFrozen checks which float32 tensors a network built with
// nn.Options.ReleaseFrozen (as Run builds it) drops from the weights: every
// frozen projection, and the embedding and LM head where the network keeps
// them converted or packed; never a trainable vanilla layer or a norm.
func TestReleaseFrozen(t *testing.T) {
	for _, tc := range []struct {
		opt       nn.Options
		headKept  bool // the network uses the float32 embedding itself
		trainedL1 bool // layer 1 trains (vanilla)
	}{
		{nn.Options{Method: nn.Vanilla, NumLastLayers: 1, Precision: nn.BF16}, false, true},
		{nn.Options{Method: nn.Vanilla, NumLastLayers: 1, Precision: nn.FP32}, true, true},
		{nn.Options{Method: nn.LoRA, LoRARank: 4, LoRAAlpha: 8, Precision: nn.FP32}, false, false},
		{nn.Options{Method: nn.TFew, Precision: nn.BF16}, false, false},
	} {
		m, err := model.Load(tinyModelDir(t, 1))
		if err != nil {
			t.Fatal(err)
		}
		w := &m.Weights
		tc.opt.ReleaseFrozen = true
		if _, err := nn.New(&m.Config, w, tc.opt); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s %s", tc.opt.Method, tc.opt.Precision)
		if w.Layers[0].Q.W != nil || w.Layers[0].Down.W != nil {
			t.Errorf("%s: frozen float32 projections kept", name)
		}
		if (w.Embed != nil) != tc.headKept || (!tc.headKept && w.LMHead != nil) {
			t.Errorf("%s: embedding kept %v, want %v", name, w.Embed != nil, tc.headKept)
		}
		if (w.Layers[1].Q.W != nil) != tc.trainedL1 || (w.Layers[1].Down.W != nil) != tc.trainedL1 {
			t.Errorf("%s: layer 1 projections kept %v, want %v", name, w.Layers[1].Q.W != nil, tc.trainedL1)
		}
		if w.Layers[0].InputNorm == nil || w.Norm == nil {
			t.Errorf("%s: norm dropped", name)
		}
		m.Close()
	}
}
