package model

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/safetensors"
)

func TestInitDeterministic(t *testing.T) {
	write := func(seed uint64, dtype safetensors.DType) []byte {
		dir := t.TempDir()
		if err := Init(context.Background(), dir, InitOptions{Preset: "tiny", Seed: seed, DType: dtype}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := write(1, ""), write(1, ""), write(2, "")
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different weights")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same weights")
	}
	if bf := write(1, safetensors.BF16); len(bf) >= len(a) {
		t.Fatalf("bf16 file (%d bytes) not smaller than f32 (%d)", len(bf), len(a))
	}
	if err := Init(context.Background(), t.TempDir(), InitOptions{Preset: "gpt-5"}); !errors.Is(err, ErrPreset) {
		t.Fatalf("unknown preset: %v", err)
	}
}

func TestInitMatchesHF(t *testing.T) {
	m, _ := newTestModel(t, "tiny", safetensors.F32, nil)
	// Norm weights are around 1 with RandomNorms; linear weights have std ≈ 0.02.
	w := m.Weights.Layers[0].Q.W
	var ss float64
	for _, v := range w {
		ss += float64(v) * float64(v)
	}
	if std := ss / float64(len(w)); std < 0.018*0.018 || std > 0.022*0.022 {
		t.Fatalf("q_proj variance %g, want about 0.02²", std)
	}
	dir := t.TempDir()
	if err := Init(context.Background(), dir, InitOptions{Preset: "tiny", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	plain, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, v := range plain.Weights.Layers[1].PostAttnNorm {
		if v != 1 {
			t.Fatalf("norm weight %g, want 1", v)
		}
	}
}

func TestPresets(t *testing.T) {
	want := map[string]struct {
		arch   string
		params int64 // published parameter counts (with the published vocabulary)
	}{
		"smollm2-135m":   {"LlamaForCausalLM", 134515008},
		"qwen2.5-0.5b":   {"Qwen2ForCausalLM", 494032768},
		"llama-3.2-1b":   {"LlamaForCausalLM", 1235814400},
		"tinyllama-1.1b": {"LlamaForCausalLM", 1100048384},
	}
	for name, w := range want {
		raw, err := PresetConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig(mustJSON(t, raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Architecture() != w.arch {
			t.Errorf("%s: architecture %s", name, cfg.Architecture())
		}
		var n int64
		shapes := tensorShapes(&cfg)
		for _, tn := range TensorNames(&cfg) {
			p := int64(1)
			for _, d := range shapes[tn] {
				p *= int64(d)
			}
			n += p
		}
		if n != w.params {
			t.Errorf("%s: %d parameters, want %d", name, n, w.params)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	_, dir := newTestModel(t, "tiny-qwen2", safetensors.F32, nil)
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var all []safetensors.Tensor
	for _, ti := range f.Tensors() {
		v, _, err := f.Float32(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, safetensors.Tensor{Name: ti.Name, Shape: ti.Shape, Data: append([]float32{}, v...)})
	}
	f.Close()
	cfgJSON, _ := os.ReadFile(filepath.Join(dir, "config.json"))

	tests := []struct {
		name   string
		edit   func([]safetensors.Tensor) []safetensors.Tensor
		config func(string) string
		want   []string
	}{
		{"missing bias", func(ts []safetensors.Tensor) []safetensors.Tensor {
			return drop(ts, "model.layers.1.self_attn.k_proj.bias")
		}, nil, []string{"model.layers.1.self_attn.k_proj.bias", "missing"}},
		{"misshapen", func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "model.layers.0.mlp.up_proj.weight" {
					ts[i].Shape = []int{64, 128}
				}
			}
			return ts
		}, nil, []string{"model.layers.0.mlp.up_proj.weight", "[64 128]", "[128 64]"}},
		{"unsupported architecture", nil, func(s string) string {
			return strings.Replace(s, "Qwen2ForCausalLM", "GPTNeoXForCausalLM", 1)
		}, []string{"GPTNeoXForCausalLM", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"}},
		{"untied without lm_head", nil, func(s string) string {
			return strings.Replace(s, `"tie_word_embeddings": true`, `"tie_word_embeddings": false`, 1)
		}, []string{"lm_head.weight", "missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			ts := append([]safetensors.Tensor{}, all...)
			if tc.edit != nil {
				ts = tc.edit(ts)
			}
			if err := safetensors.WriteFile(filepath.Join(d, "model.safetensors"), ts, nil); err != nil {
				t.Fatal(err)
			}
			c := string(cfgJSON)
			if tc.config != nil {
				c = tc.config(c)
			}
			os.WriteFile(filepath.Join(d, "config.json"), []byte(c), 0o644)
			_, err := Load(d)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := Inspect(d); err == nil {
				t.Error("Inspect: no error")
			}
		})
	}
}

func drop(ts []safetensors.Tensor, name string) []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, t := range ts {
		if t.Name != name {
			out = append(out, t)
		}
	}
	return out
}

func TestInspect(t *testing.T) {
	_, dir := newTestModel(t, "tiny-llama3", safetensors.BF16, nil)
	info, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info.Parameters != m.NumParams() || info.DTypes["BF16"] != info.Tensors || info.Architecture != "LlamaForCausalLM" {
		t.Fatalf("info %+v, params %d", info, m.NumParams())
	}
	if s := info.Shapes["q_proj"]; len(s) != 2 || s[0] != 64 || s[1] != 64 {
		t.Fatalf("q_proj shape %v", s)
	}
}
