package model

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gantryml/gantry/internal/safetensors"
)

// Info describes a model directory without reading its weights.
type Info struct {
	Dir          string            `json:"dir"`
	Architecture string            `json:"architecture"`
	ModelType    string            `json:"model_type"`
	Config       Config            `json:"config"`
	Parameters   int64             `json:"parameters"`
	Tensors      int               `json:"tensors"`
	DTypes       map[string]int    `json:"dtypes"`     // dtype → number of tensors
	Files        []string          `json:"files"`      // safetensors files
	SizeBytes    int64             `json:"size_bytes"` // of the safetensors files
	Shapes       map[string][]int  `json:"shapes"`     // one layer's and the shared tensors' shapes, by short name
	Generation   *GenerationConfig `json:"generation,omitempty"`
}

// Inspect reads dir's config.json and safetensors headers and checks that
// every tensor the architecture needs is present with the right shape,
// without converting any weights.
func Inspect(dir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("inspect model: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("inspect model %s: config.json: %w", dir, err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("inspect model %s: %w", dir, err)
	}
	defer set.Close()
	info := &Info{Dir: dir, Architecture: cfg.Architecture(), ModelType: cfg.ModelType, Config: cfg,
		DTypes: map[string]int{}, Shapes: map[string][]int{}}
	for _, f := range set.Files {
		info.Files = append(info.Files, filepath.Base(f.Path()))
		if st, err := os.Stat(f.Path()); err == nil {
			info.SizeBytes += st.Size()
		}
	}
	sort.Strings(info.Files)
	shapes := tensorShapes(&cfg)
	for _, name := range TensorNames(&cfg) {
		t, _, ok := set.Info(name)
		if !ok {
			return nil, fmt.Errorf("inspect model %s: %w: tensor %s %v is missing", dir, ErrWeights, name, shapes[name])
		}
		if !sameShape(t.Shape, shapes[name]) {
			return nil, fmt.Errorf("inspect model %s: %w: tensor %s has shape %v, want %v", dir, ErrWeights, name, t.Shape, shapes[name])
		}
	}
	for _, name := range set.Names() {
		t, _, _ := set.Info(name)
		info.Tensors++
		info.DTypes[string(t.DType)]++
		if cfg.TieWordEmbeddings && name == "lm_head.weight" {
			continue
		}
		info.Parameters += int64(t.NumElements())
	}
	short := map[string]string{
		"model.embed_tokens.weight": "embed_tokens", "lm_head.weight": "lm_head", "model.norm.weight": "norm",
	}
	for _, s := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
		short["model.layers.0."+s+".weight"] = s[len("self_attn."):]
		if s[:3] == "mlp" {
			short["model.layers.0."+s+".weight"] = s[len("mlp."):]
		}
	}
	for long, s := range short {
		if t, _, ok := set.Info(long); ok {
			info.Shapes[s] = t.Shape
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		if g, err := parseGenerationConfig(b); err == nil {
			info.Generation = &g
		}
	}
	return info, nil
}
