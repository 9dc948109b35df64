package pretrain

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gantryml/gantry/internal/model"
)

// BasePreset is the architecture of Gantry's built-in default base model.
const BasePreset = "gantry-base"

// presets are pretraining architectures of this package, beside
// internal/model's: small Llama models over the built-in byte-level
// vocabulary (vocab_size is replaced by the tokenizer's, 259).
var presets = map[string]string{
	// gantry-base: Llama, 4 layers, hidden 128, 4 heads of 32 over 2
	// key/value heads, SwiGLU 384, context 256, untied LM head: 0.85M
	// parameters, small enough to pretrain on 2 cores in minutes and to
	// fine-tune in the demo in seconds per epoch.
	BasePreset: `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":128,"intermediate_size":384,
		"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":256,
		"rms_norm_eps":1e-05,"rope_theta":10000.0,"hidden_act":"silu","initializer_range":0.02,"tie_word_embeddings":false,
		"attention_bias":false,"torch_dtype":"float32","vocab_size":259}`,
}

// PresetNames returns the architectures Run knows: this package's and
// internal/model's, sorted.
func PresetNames() []string {
	names := model.Presets()
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// PresetConfig returns a preset's config.json as a generic map (numbers as
// json.Number), from this package's presets or else internal/model's.
func PresetConfig(name string) (map[string]any, error) {
	src, ok := presets[name]
	if !ok {
		m, err := model.PresetConfig(name)
		if err != nil {
			return nil, fmt.Errorf("%w: unknown preset %q (known: %s)", ErrOptions, name, strings.Join(PresetNames(), ", "))
		}
		return m, nil
	}
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	return m, nil
}
