package nn

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/safetensors"
)

// torchPython returns the interpreter with torch, or skips (fails under
// GANTRY_REQUIRE_REFERENCES=1) when there is none.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		if os.Getenv("GANTRY_REQUIRE_REFERENCES") == "1" {
			t.Fatalf("PyTorch reference required but %s cannot import torch: %v", py, err)
		}
		t.Skipf("no PyTorch at %s (%v); set GANTRY_REQUIRE_REFERENCES=1 to require it", py, err)
	}
	return py
}

// writeModelDir writes cfg and w as a Hugging Face model directory.
func writeModelDir(t *testing.T, dir string, cfg *model.Config, w *model.Weights) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := map[string]any{
		"architectures": cfg.Architectures, "model_type": cfg.ModelType,
		"sliding_window": cfg.SlidingWindow, "use_sliding_window": cfg.UseSlidingWindow, "mlp_bias": cfg.MLPBias,
		"hidden_size": cfg.HiddenSize, "intermediate_size": cfg.IntermediateSize,
		"num_hidden_layers": cfg.NumHiddenLayers, "num_attention_heads": cfg.NumAttentionHeads,
		"num_key_value_heads": cfg.NumKeyValueHeads, "vocab_size": cfg.VocabSize,
		"max_position_embeddings": cfg.MaxPositionEmbeddings, "rms_norm_eps": cfg.RMSNormEps,
		"rope_theta": cfg.RopeTheta, "tie_word_embeddings": cfg.TieWordEmbeddings,
		"attention_bias": cfg.AttentionBias, "hidden_act": "silu", "torch_dtype": "float32",
	}
	if rs := cfg.RopeScaling; rs != nil {
		conf["rope_scaling"] = map[string]any{"rope_type": rs.RopeType, "factor": rs.Factor,
			"low_freq_factor": rs.LowFreqFactor, "high_freq_factor": rs.HighFreqFactor,
			"original_max_position_embeddings": rs.OriginalMaxPositionEmbeddings}
	}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	C := cfg.HiddenSize
	ts := []safetensors.Tensor{
		{Name: "model.embed_tokens.weight", Shape: []int{cfg.VocabSize, C}, Data: w.Embed},
		{Name: "model.norm.weight", Shape: []int{C}, Data: w.Norm},
	}
	if !cfg.TieWordEmbeddings {
		ts = append(ts, safetensors.Tensor{Name: "lm_head.weight", Shape: []int{cfg.VocabSize, C}, Data: w.LMHead})
	}
	for l := range w.Layers {
		ly := &w.Layers[l]
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			safetensors.Tensor{Name: p + "input_layernorm.weight", Shape: []int{C}, Data: ly.InputNorm},
			safetensors.Tensor{Name: p + "post_attention_layernorm.weight", Shape: []int{C}, Data: ly.PostAttnNorm})
		for i, ln := range []*model.Linear{&ly.Q, &ly.K, &ly.V, &ly.O, &ly.Gate, &ly.Up, &ly.Down} {
			ts = append(ts, safetensors.Tensor{Name: p + linearNames[i] + ".weight", Shape: []int{ln.Out, ln.In}, Data: ln.W})
			if ln.B != nil {
				ts = append(ts, safetensors.Tensor{Name: p + linearNames[i] + ".bias", Shape: []int{ln.Out}, Data: ln.B})
			}
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// parityModel is a small Llama with GQA whose weights carry real gradients.
func parityModel(arch string, window int, bias, tied bool) (*model.Config, *model.Weights) {
	cfg := &model.Config{
		Architectures: []string{arch}, SlidingWindow: window, UseSlidingWindow: window > 0,
		ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 61, MaxPositionEmbeddings: 128,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: tied, AttentionBias: bias, HiddenAct: "silu",
		RopeScaling: &model.RopeScaling{RopeType: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16},
	}
	w := RandomWeights(cfg, 21)
	for _, x := range [][]float32{w.Embed, w.LMHead} {
		for i := range x {
			x[i] *= 20
		}
	}
	for i := range w.Layers {
		for _, ln := range []*model.Linear{&w.Layers[i].Q, &w.Layers[i].K, &w.Layers[i].V, &w.Layers[i].O, &w.Layers[i].Gate, &w.Layers[i].Up, &w.Layers[i].Down} {
			for j := range ln.W {
				ln.W[j] *= 8
			}
		}
	}
	if tied {
		w.LMHead = w.Embed
	}
	return cfg, w
}

func TestPyTorchParity(t *testing.T) {
	py := torchPython(t)
	const steps, lr, wd = 5, 1e-2, 0.01
	const llama, mistral, qwen2 = "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"
	cases := []struct {
		name       string
		arch       string
		window     int
		bias, tied bool
		opt        Options
	}{
		{"lora", llama, 0, true, true, Options{Method: LoRA, LoRARank: 4, LoRAAlpha: 8, Seed: 1}},
		{"lora-untied", llama, 0, false, false, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 1, LoRATargets: []string{"q_proj", "v_proj", "up_proj"}, Seed: 2}},
		{"lora-mistral-window", mistral, 4, false, false, Options{Method: LoRA, LoRARank: 3, LoRAAlpha: 6, Seed: 3}},
		{"tfew", llama, 0, false, false, Options{Method: TFew}},
		{"tfew-qwen2", qwen2, 0, false, true, Options{Method: TFew}},
		{"vanilla", llama, 0, true, false, Options{Method: Vanilla, NumLastLayers: 1}},
		{"vanilla-qwen2", qwen2, 0, false, true, Options{Method: Vanilla, NumLastLayers: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, w := parityModel(c.arch, c.window, c.bias, c.tied)
			writeModelDir(t, filepath.Join(dir, "model"), cfg, w)
			n, err := New(cfg, w, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if c.opt.Method != Vanilla {
				var ts []safetensors.Tensor
				for _, p := range n.Params() {
					ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data})
				}
				if err := safetensors.WriteFile(filepath.Join(dir, "adapter.safetensors"), ts, nil); err != nil {
					t.Fatal(err)
				}
			}
			b := &Batch{B: 3, T: 11, Lengths: []int{11, 6, 9}}
			tok := [][]int32{}
			tgt := [][]int32{}
			for s := 0; s < b.B; s++ {
				var ts, gs []int32
				for p := 0; p < b.T; p++ {
					id := int32((s*37 + p*p*13 + 5) % cfg.VocabSize)
					g := int32((s*11 + p*29 + 3) % cfg.VocabSize)
					if p >= b.Lengths[s] {
						id, g = 0, -1
					}
					if p == 2 && s == 0 {
						g = -1 // a prompt position without loss
					}
					ts, gs = append(ts, id), append(gs, g)
				}
				tok, tgt = append(tok, ts), append(tgt, gs)
				b.Tokens, b.Targets = append(b.Tokens, ts...), append(b.Targets, gs...)
			}
			tokens := 0
			for _, g := range b.Targets {
				if g >= 0 {
					tokens++
				}
			}
			scale := 1 / float32(tokens)
			run := map[string]any{"method": c.opt.Method, "lora_alpha": c.opt.LoRAAlpha, "lora_rank": c.opt.LoRARank,
				"num_last_layers": c.opt.NumLastLayers, "tokens": tok, "targets": tgt, "lengths": b.Lengths,
				"scale": scale, "lr": lr, "weight_decay": wd, "steps": steps}
			rb, _ := json.Marshal(run)
			if err := os.WriteFile(filepath.Join(dir, "run.json"), rb, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, filepath.Join("testdata", "parity.py"), dir)
			cmd.Stderr = os.Stderr
			outb, err := cmd.Output()
			if err != nil {
				t.Fatalf("parity.py: %v", err)
			}
			var ref struct {
				Losses []float64
				Grads  map[string][]float64
			}
			if err := json.Unmarshal(outb, &ref); err != nil {
				t.Fatalf("parity.py output: %v", err)
			}
			opt := NewAdamW(n.Params())
			opt.WeightDecay = wd
			ctx := context.Background()
			for step := 0; step < steps; step++ {
				n.ZeroGrad()
				loss, _, err := n.ForwardBackward(ctx, b, scale)
				if err != nil {
					t.Fatal(err)
				}
				want := ref.Losses[step]
				if rel := math.Abs(loss-want) / math.Abs(want); rel > 1e-4 {
					t.Errorf("step %d: loss %.7g, PyTorch %.7g (rel %.2g)", step+1, loss, want, rel)
				} else {
					t.Logf("step %d: loss %.7g, PyTorch %.7g (rel %.2g)", step+1, loss, want, rel)
				}
				if step == 0 {
					compareGrads(t, n.Params(), ref.Grads)
				}
				opt.Step(lr)
			}
		})
	}
}

// compareGrads checks every parameter's gradient against PyTorch's: the
// largest difference within 1e-3 of the largest reference magnitude.
func compareGrads(t *testing.T, params []*Param, ref map[string][]float64) {
	t.Helper()
	if len(ref) != len(params) {
		t.Errorf("%d parameters, PyTorch has %d", len(params), len(ref))
	}
	for _, p := range params {
		r, ok := ref[p.Name]
		if !ok || len(r) != len(p.Grad) {
			t.Errorf("%s: PyTorch gradient missing or of length %d, want %d", p.Name, len(r), len(p.Grad))
			continue
		}
		var maxRef, maxDiff float64
		for i, g := range p.Grad {
			maxRef = math.Max(maxRef, math.Abs(r[i]))
			maxDiff = math.Max(maxDiff, math.Abs(float64(g)-r[i]))
		}
		if maxDiff > 1e-3*maxRef+1e-7 {
			t.Errorf("%s: gradient differs from PyTorch by %.3g (largest |grad| %.3g)", p.Name, maxDiff, maxRef)
		}
	}
}
