package peft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/safetensors"
)

// tinyModel returns random weights for a 2-layer model with GQA and a k/v
// bias, so IA3's bias scaling is exercised.
func tinyModel(seed uint64) (*model.Config, *model.Weights) {
	cfg := &model.Config{HiddenSize: 8, IntermediateSize: 12, NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 10}
	r := rand.New(rand.NewPCG(seed, 1))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	lin := func(out, in int, bias bool) model.Linear {
		l := model.Linear{W: vec(out * in), Out: out, In: in}
		if bias {
			l.B = vec(out)
		}
		return l
	}
	h, kv, ff := 8, 2*cfg.Dim(), 12
	w := &model.Weights{Embed: vec(10 * h), Norm: vec(h), LMHead: vec(10 * h)}
	for range 2 {
		w.Layers = append(w.Layers, model.Layer{
			InputNorm: vec(h), PostAttnNorm: vec(h),
			Q: lin(h, h, true), K: lin(kv, h, true), V: lin(kv, h, true), O: lin(h, h, false),
			Gate: lin(ff, h, false), Up: lin(ff, h, false), Down: lin(h, ff, false),
		})
	}
	return cfg, w
}

func randTensor(r *rand.Rand, name string, shape ...int) Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	t := Tensor{Name: name, Shape: shape, Data: make([]float32, n)}
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

func TestSaveLoadRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := "base_model.model.model.layers.1.self_attn.q_proj."
	cases := []*Adapter{
		NewLoRA("base", 4, 8, 0.1, []string{"q_proj", "v_proj"}, []Tensor{randTensor(r, p+"lora_A.weight", 4, 8), randTensor(r, p+"lora_B.weight", 8, 4)}),
		NewIA3("base", []Tensor{randTensor(r, "base_model.model.model.layers.0.self_attn.k_proj.ia3_l", 4, 1), randTensor(r, "base_model.model.model.layers.0.mlp.down_proj.ia3_l", 1, 12)}),
		NewVanilla("base", 1, []int{1}, []Tensor{randTensor(r, "model.layers.1.mlp.up_proj.weight", 12, 8), randTensor(r, "model.norm.weight", 8)}),
	}
	for _, a := range cases {
		t.Run(string(a.Kind), func(t *testing.T) {
			dir := t.TempDir()
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind != a.Kind || !reflect.DeepEqual(b.Config, a.Config) || !reflect.DeepEqual(b.Manifest, a.Manifest) {
				t.Errorf("loaded %+v %+v %+v, want %+v %+v %+v", b.Kind, b.Config, b.Manifest, a.Kind, a.Config, a.Manifest)
			}
			for _, want := range a.Tensors {
				got, ok := b.Tensor(want.Name)
				if !ok || !reflect.DeepEqual(got.Shape, want.Shape) || !reflect.DeepEqual(got.Data, want.Data) {
					t.Errorf("tensor %s differs after the round trip", want.Name)
				}
			}
		})
	}
}

// TestConfigJSON checks the keys PEFT and vLLM read.
func TestConfigJSON(t *testing.T) {
	dir := t.TempDir()
	a := NewLoRA("HuggingFaceTB/SmolLM2-135M", 8, 16, 0.1, []string{"q_proj", "v_proj"}, nil)
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8.0, "lora_alpha": 16.0, "lora_dropout": 0.1,
		"target_modules": []any{"q_proj", "v_proj"}, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M",
		"fan_in_fan_out": false, "bias": "none", "inference_mode": true}
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// Zero dropout is still written for LoRA.
	dir = t.TempDir()
	if err := NewLoRA("b", 4, 4, 0, []string{"q_proj"}, nil).Save(dir); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, ConfigFile))
	m = nil
	json.Unmarshal(b, &m)
	if v, ok := m["lora_dropout"]; !ok || v != 0.0 {
		t.Errorf("lora_dropout 0 not written: %s", b)
	}
	dir = t.TempDir()
	if err := NewIA3("base", nil).Save(dir); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, ConfigFile))
	m = nil
	json.Unmarshal(b, &m)
	if m["peft_type"] != "IA3" || !reflect.DeepEqual(m["feedforward_modules"], []any{"down_proj"}) || m["r"] != nil || m["lora_dropout"] != nil || m["bias"] != nil {
		t.Errorf("IA3 config %s", b)
	}
	// A regular-expression target_modules string loads.
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"peft_type": "IA3", "target_modules": ".*(k|v|down)_proj", "feedforward_modules": ".*down_proj"}`), 0o644)
	if _, err := Load(dir); err != nil {
		t.Errorf("regex modules: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNotAdapter) {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"peft_type": "PREFIX_TUNING"}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "PREFIX_TUNING") {
		t.Errorf("unsupported type: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"peft_type": "LORA", "r": 4}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), WeightsFile) {
		t.Errorf("missing weights: %v", err)
	}
	os.WriteFile(filepath.Join(dir, WeightsFile), []byte("garbage"), 0o644)
	if _, err := Load(dir); err == nil {
		t.Errorf("corrupt weights loaded")
	}
}

// TestMerge checks every kind's merge against the formula written out
// element by element.
func TestMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	l := "base_model.model.model.layers.1."
	A, B := randTensor(r, l+"mlp.up_proj.lora_A.weight", 3, 8), randTensor(r, l+"mlp.up_proj.lora_B.weight", 12, 3)
	lora := NewLoRA("b", 3, 6, 0, []string{"up_proj"}, []Tensor{A, B})
	kv := randTensor(r, l+"self_attn.k_proj.ia3_l", 4, 1)
	down := randTensor(r, l+"mlp.down_proj.ia3_l", 1, 12)
	ia3 := NewIA3("b", []Tensor{kv, down})
	up := randTensor(r, "model.layers.1.mlp.up_proj.weight", 12, 8)
	kb := randTensor(r, "model.layers.0.self_attn.k_proj.bias", 4)
	vanilla := NewVanilla("b", 1, []int{1}, []Tensor{up, kb})

	cases := []struct {
		a     *Adapter
		check func(base, got *model.Weights) error
	}{
		{lora, func(base, got *model.Weights) error {
			for o := 0; o < 12; o++ {
				for i := 0; i < 8; i++ {
					var s float64
					for k := 0; k < 3; k++ {
						s += float64(B.Data[o*3+k]) * float64(A.Data[k*8+i])
					}
					want := float64(base.Layers[1].Up.W[o*8+i]) + 2*s
					if d := math.Abs(float64(got.Layers[1].Up.W[o*8+i]) - want); d > 1e-5 {
						return fmt.Errorf("up[%d,%d] off by %g", o, i, d)
					}
				}
			}
			return nil
		}},
		{ia3, func(base, got *model.Weights) error {
			for o := 0; o < 4; o++ {
				if got.Layers[1].K.B[o] != base.Layers[1].K.B[o]*kv.Data[o] {
					return fmt.Errorf("k bias %d not scaled", o)
				}
				for i := 0; i < 8; i++ {
					if got.Layers[1].K.W[o*8+i] != base.Layers[1].K.W[o*8+i]*kv.Data[o] {
						return fmt.Errorf("k[%d,%d] not scaled by row", o, i)
					}
				}
			}
			for o := 0; o < 8; o++ {
				for i := 0; i < 12; i++ {
					if got.Layers[1].Down.W[o*12+i] != base.Layers[1].Down.W[o*12+i]*down.Data[i] {
						return fmt.Errorf("down[%d,%d] not scaled by column", o, i)
					}
				}
			}
			if !reflect.DeepEqual(got.Layers[0], base.Layers[0]) || !reflect.DeepEqual(got.Layers[1].V, base.Layers[1].V) {
				return fmt.Errorf("untargeted weights changed")
			}
			return nil
		}},
		{vanilla, func(base, got *model.Weights) error {
			if !reflect.DeepEqual(got.Layers[1].Up.W, up.Data) || !reflect.DeepEqual(got.Layers[0].K.B, kb.Data) {
				return fmt.Errorf("tensors not replaced")
			}
			if !reflect.DeepEqual(got.Layers[1].Down, base.Layers[1].Down) {
				return fmt.Errorf("other tensors changed")
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(string(c.a.Kind), func(t *testing.T) {
			cfg, base := tinyModel(5)
			_, w := tinyModel(5)
			// Through a save and load, as generate and export use it.
			dir := t.TempDir()
			if err := c.a.Save(dir); err != nil {
				t.Fatal(err)
			}
			a, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Merge(cfg, w); err != nil {
				t.Fatal(err)
			}
			if err := c.check(base, w); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	l := "base_model.model.model.layers.1.self_attn.q_proj."
	cases := []struct {
		name string
		a    *Adapter
		want string
	}{
		{"A shape", NewLoRA("b", 2, 2, 0, nil, []Tensor{randTensor(r, l+"lora_A.weight", 2, 7), randTensor(r, l+"lora_B.weight", 8, 2)}), "shape [2 7], want [2 8]"},
		{"B shape", NewLoRA("b", 2, 2, 0, nil, []Tensor{randTensor(r, l+"lora_A.weight", 2, 8), randTensor(r, l+"lora_B.weight", 8, 3)}), "shape [8 3], want [8 2]"},
		{"no B", NewLoRA("b", 2, 2, 0, nil, []Tensor{randTensor(r, l+"lora_A.weight", 2, 8)}), "no matching"},
		{"layer", NewLoRA("b", 2, 2, 0, nil, []Tensor{randTensor(r, "base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight", 2, 8)}), "layer 9"},
		{"name", NewLoRA("b", 2, 2, 0, nil, []Tensor{randTensor(r, "base_model.model.lm_head.lora_A.weight", 2, 8)}), "not a supported"},
		{"ia3 shape", NewIA3("b", []Tensor{randTensor(r, "base_model.model.model.layers.0.self_attn.k_proj.ia3_l", 3, 1)}), "want [4 1] or [1 8]"},
		{"ia3 in lora", NewLoRA("b", 2, 2, 0, nil, []Tensor{randTensor(r, "base_model.model.model.layers.0.self_attn.k_proj.ia3_l", 4, 1)}), "does not belong"},
		{"vanilla shape", NewVanilla("b", 1, nil, []Tensor{randTensor(r, "model.norm.weight", 9)}), "shape [9], want [8]"},
		{"vanilla name", NewVanilla("b", 1, nil, []Tensor{randTensor(r, "model.layers.0.mlp.act.weight", 9)}), "not a supported model tensor"},
		{"vanilla bias", NewVanilla("b", 1, nil, []Tensor{randTensor(r, "model.layers.0.self_attn.o_proj.bias", 8)}), "no such bias"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, w := tinyModel(1)
			_, base := tinyModel(1)
			err := c.a.Merge(cfg, w)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if !reflect.DeepEqual(w, base) {
				t.Error("a failed merge changed the weights")
			}
		})
	}
}

// writeModelDir writes cfg and w as a Hugging Face model directory with a
// stand-in tokenizer file.
func writeModelDir(t *testing.T, cfg *model.Config, w *model.Weights) string {
	t.Helper()
	dir := t.TempDir()
	cfgJSON := fmt.Sprintf(`{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d, "intermediate_size": %d,
		"num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": %d, "max_position_embeddings": 64,
		"rms_norm_eps": 1e-5, "rope_theta": 10000, "hidden_act": "silu", "tie_word_embeddings": false, "attention_bias": true,
		"torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 123456789012345678901234567890}`,
		cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.VocabSize)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"stand-in": true}`), 0o644)
	parsed, err := model.ParseConfig([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range model.TensorNames(&parsed) {
		data, shape, err := hfTensor(cfg, w, name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: name, Shape: shape, Data: data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExport(t *testing.T) {
	cfg, w := tinyModel(7)
	// Attention bias in the file means an O bias too for Llama; give it one.
	for i := range w.Layers {
		w.Layers[i].O.B = make([]float32, 8)
	}
	base := writeModelDir(t, cfg, w)
	r := rand.New(rand.NewPCG(5, 6))
	l := "base_model.model.model.layers.0.self_attn.v_proj."
	a := NewLoRA("base", 2, 4, 0, []string{"v_proj"}, []Tensor{randTensor(r, l+"lora_A.weight", 2, 8), randTensor(r, l+"lora_B.weight", 4, 2)})
	adir := t.TempDir()
	if err := a.Save(adir); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(cfg, w); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if err := Export(context.Background(), base, adir, out, ExportOptions{DType: safetensors.F32}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !reflect.DeepEqual(m.Weights.Layers[0].V.W, w.Layers[0].V.W) || !reflect.DeepEqual(m.Weights.Layers[1].Q.W, w.Layers[1].Q.W) {
		t.Error("exported weights differ from the merged weights")
	}
	if b, err := os.ReadFile(filepath.Join(out, "tokenizer.json")); err != nil || string(b) != `{"stand-in": true}` {
		t.Errorf("tokenizer.json not copied: %q %v", b, err)
	}
	cb, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if !strings.Contains(string(cb), `"torch_dtype": "float32"`) || !strings.Contains(string(cb), "123456789012345678901234567890") {
		t.Errorf("config.json: %s", cb)
	}
	if err := Export(context.Background(), base, adir, out, ExportOptions{}); err == nil {
		t.Error("export over a non-empty directory succeeded")
	}
}
