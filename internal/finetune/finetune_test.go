package finetune

import (
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/client"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/train"
)

func TestParseMemAvailable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   12345678 kB\n", 12345678 * 1024, true},
		{"MemAvailable: 42\n", 42, true},
		{"MemTotal: 1 kB\n", 0, false},
		{"MemAvailable: -5 kB\n", 0, false},
		{"MemAvailable: lots kB\n", 0, false},
	} {
		got, err := parseMemAvailable([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseMemAvailable(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestEstimate(t *testing.T) {
	// Llama 3.2 1B: ~1.24e9 parameters.
	cfg := model.Config{HiddenSize: 2048, IntermediateSize: 8192, NumHiddenLayers: 16, NumAttentionHeads: 32,
		NumKeyValueHeads: 8, VocabSize: 128256}
	const params = 1_235_814_400
	small := Estimate(&cfg, params, EstimateOptions{Method: nn.LoRA, Batch: 1, SeqLen: 128})
	big := Estimate(&cfg, params, EstimateOptions{Method: nn.LoRA, Batch: 8, SeqLen: 2048})
	if small.Weights != 4*params || big.Weights != small.Weights {
		t.Errorf("weights %d, %d; want %d", small.Weights, big.Weights, 4*params)
	}
	if !(big.Activations > 8*16*small.Activations) {
		t.Errorf("activations for 8×2048 (%d) should exceed 128× those of 1×128 (%d): attention scores grow with T²", big.Activations, small.Activations)
	}
	van := Estimate(&cfg, params, EstimateOptions{Method: nn.Vanilla, Batch: 1, SeqLen: 128, NumLastLayers: 16})
	ia3 := Estimate(&cfg, params, EstimateOptions{Method: nn.TFew, Batch: 1, SeqLen: 128})
	if !(van.State > small.State && small.State > ia3.State && ia3.State > 0) {
		t.Errorf("training state vanilla %d, lora %d, ia3 %d: want vanilla > lora > ia3 > 0", van.State, small.State, ia3.State)
	}
	// All layers' weights trained: the state is six copies of the layers.
	if layers := int64(4 * 16 * (2*2048 + 2*2048*2048 + 2*2048*512 + 3*2048*8192)); van.State != 6*layers {
		t.Errorf("vanilla state %d, want %d", van.State, 6*layers)
	}
	if big.Total() != big.Weights+big.State+big.Activations {
		t.Error("Total is not the sum of the parts")
	}
}

// TestMetricLine checks that the log line round-trips through the
// client's parser and ours.
func TestMetricLine(t *testing.T) {
	vl, va := 0.75, 0.5
	for _, m := range []train.Metrics{
		{Step: 7, Epoch: 1, TotalSteps: 30, TrainLoss: 1.25, LearningRate: 2e-4},
		{Step: 30, Epoch: 3, TotalSteps: 30, TrainLoss: 0.5, LearningRate: 1e-5, ValLoss: &vl, ValAccuracy: &va},
	} {
		line := MetricLine(m)
		if !strings.Contains(line, "step ") || !strings.Contains(line, "loss ") {
			t.Errorf("line %q lacks its readable prefix", line)
		}
		p, ok := client.ParseMetricLine(line)
		if !ok || p.Step != m.Step || p.Epoch != m.Epoch || p.TrainLoss != m.TrainLoss || p.LearningRate != m.LearningRate {
			t.Errorf("client parsed %q as %+v, %v", line, p, ok)
		}
		if (m.ValLoss == nil) != (p.ValLoss == nil) || (p.ValLoss != nil && (*p.ValLoss != vl || *p.ValAccuracy != va)) {
			t.Errorf("client parsed validation of %q as %v %v", line, p.ValLoss, p.ValAccuracy)
		}
		if s, ok := parseMetricStep(line); !ok || s != m.Step {
			t.Errorf("parseMetricStep(%q) = %d, %v", line, s, ok)
		}
	}
	for _, msg := range []string{"fine-tuning started (attempt 1)", `{"step": 3}`, "metrics: {not json"} {
		if _, ok := parseMetricStep(msg); ok {
			t.Errorf("parseMetricStep(%q) accepted a non-metrics line", msg)
		}
	}
}
