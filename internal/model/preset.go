package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantryml/gantry/internal/safetensors"
)

// ErrPreset is wrapped when a preset name is unknown.
var ErrPreset = errors.New("unknown preset")

// presets are the published config.json values of the models Gantry can
// initialise (vocab_size may be replaced by a tokenizer's), and tiny test
// models in the same architectures.
var presets = map[string]string{
	"tiny": `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":128,
		"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":1024,
		"rms_norm_eps":1e-05,"rope_theta":10000.0,"hidden_act":"silu","initializer_range":0.02,"tie_word_embeddings":false,
		"attention_bias":false,"torch_dtype":"float32","vocab_size":512}`,
	"tiny-qwen2": `{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":64,"intermediate_size":128,
		"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":1024,
		"rms_norm_eps":1e-06,"rope_theta":1000000.0,"hidden_act":"silu","initializer_range":0.02,"tie_word_embeddings":true,
		"use_sliding_window":false,"sliding_window":1024,"torch_dtype":"float32","vocab_size":512}`,
	"tiny-llama3": `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":128,
		"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":1,"head_dim":16,"max_position_embeddings":131072,
		"rms_norm_eps":1e-05,"rope_theta":500000.0,"hidden_act":"silu","initializer_range":0.02,"tie_word_embeddings":true,
		"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},
		"attention_bias":false,"torch_dtype":"float32","vocab_size":512}`,
	"smollm2-135m": `{"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":0,"eos_token_id":0,
		"hidden_act":"silu","hidden_size":576,"initializer_range":0.041666666666666664,"intermediate_size":1536,"is_llama_config":true,
		"max_position_embeddings":8192,"model_type":"llama","num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,
		"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_interleaved":false,"rope_scaling":null,"rope_theta":100000,
		"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.40.1","use_cache":true,"vocab_size":49152}`,
	"qwen2.5-0.5b": `{"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151643,
		"hidden_act":"silu","hidden_size":896,"initializer_range":0.02,"intermediate_size":4864,"max_position_embeddings":32768,
		"max_window_layers":24,"model_type":"qwen2","num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,
		"rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
		"transformers_version":"4.40.1","use_cache":true,"use_mrope":false,"use_sliding_window":false,"vocab_size":151936}`,
	"llama-3.2-1b": `{"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":128000,
		"eos_token_id":128001,"head_dim":64,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":8192,
		"max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":16,
		"num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,
		"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},
		"rope_theta":500000.0,"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.45.0.dev0","use_cache":true,
		"vocab_size":128256}`,
	"tinyllama-1.1b": `{"architectures":["LlamaForCausalLM"],"attention_bias":false,"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu",
		"hidden_size":2048,"initializer_range":0.02,"intermediate_size":5632,"max_position_embeddings":2048,"model_type":"llama",
		"num_attention_heads":32,"num_hidden_layers":22,"num_key_value_heads":4,"pretraining_tp":1,"rms_norm_eps":1e-05,
		"rope_scaling":null,"rope_theta":10000.0,"tie_word_embeddings":false,"torch_dtype":"bfloat16","transformers_version":"4.35.0",
		"use_cache":true,"vocab_size":32000}`,
}

// Presets returns the preset names, sorted.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PresetConfig returns a preset's config.json as a generic map (numbers as
// json.Number), ready to adjust and pass to InitOptions.Config.
func PresetConfig(name string) (map[string]any, error) {
	src, ok := presets[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: known presets are %s", ErrPreset, name, strings.Join(Presets(), ", "))
	}
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	return m, nil
}

// InitOptions says what Init writes.
type InitOptions struct {
	// Preset names the configuration (see Presets), unless Config is set.
	Preset string
	// Config, when not nil, is the config.json to write instead of a preset's.
	Config map[string]any
	// Seed makes the weights deterministic: the same seed gives the same bytes.
	Seed uint64
	// DType is the on-disk dtype of the weights: F32 (the default), F16 or BF16.
	DType safetensors.DType
	// TokenizerJSON and TokenizerConfigJSON are written as tokenizer.json and
	// tokenizer_config.json when TokenizerJSON is not nil.
	TokenizerJSON, TokenizerConfigJSON []byte
	// VocabSize, when positive, replaces the config's vocab_size (set it to
	// the tokenizer's), and BOS and EOS, when not nil, its token ids.
	VocabSize int
	BOS, EOS  *int
	// RandomNorms draws RMSNorm weights around 1 and biases around 0
	// instead of HF's exact ones and zeros, so that numerical tests
	// exercise them.
	RandomNorms bool
}

// Init writes a randomly initialised model directory: config.json,
// model.safetensors, generation_config.json and, when given, the tokenizer
// files. Weights are drawn as Hugging Face initialises them (normal with
// std initializer_range for linear and embedding weights, ones for norms,
// zeros for biases), each tensor from its own generator seeded by Seed
// and its name, and written one tensor at a time.
func Init(ctx context.Context, dir string, opts InitOptions) error {
	cfgMap := opts.Config
	if cfgMap == nil {
		var err error
		if cfgMap, err = PresetConfig(opts.Preset); err != nil {
			return err
		}
	}
	cfgMap = cloneMap(cfgMap)
	if opts.VocabSize > 0 {
		cfgMap["vocab_size"] = opts.VocabSize
	}
	if opts.BOS != nil {
		cfgMap["bos_token_id"] = *opts.BOS
	}
	if opts.EOS != nil {
		cfgMap["eos_token_id"] = *opts.EOS
	}
	cfgJSON, err := json.MarshalIndent(cfgMap, "", "  ")
	if err != nil {
		return fmt.Errorf("init model: %w", err)
	}
	cfg, err := ParseConfig(cfgJSON)
	if err != nil {
		return fmt.Errorf("init model: %w", err)
	}
	std := 0.02
	if v, ok := cfgMap["initializer_range"]; ok {
		if f, err := toFloat(v); err == nil {
			std = f
		}
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = safetensors.F32
	}
	if !dtype.Supported() {
		return fmt.Errorf("init model: dtype %q (want F32, F16 or BF16)", dtype)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init model: %w", err)
	}
	var tensors []safetensors.Tensor
	shapes := tensorShapes(&cfg)
	for _, name := range TensorNames(&cfg) {
		name := name
		kind := "normal"
		switch {
		case strings.HasSuffix(name, "norm.weight"):
			kind = "ones"
		case strings.HasSuffix(name, ".bias"):
			kind = "zeros"
		}
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: dtype, Shape: shapes[name], Fill: func(dst []float32) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			h := fnv.New64a()
			h.Write([]byte(name))
			rng := rand.New(rand.NewPCG(opts.Seed, h.Sum64()))
			for i := range dst {
				switch {
				case kind == "normal":
					dst[i] = float32(rng.NormFloat64() * std)
				case kind == "ones" && opts.RandomNorms:
					dst[i] = float32(1 + 0.1*rng.NormFloat64())
				case kind == "ones":
					dst[i] = 1
				case opts.RandomNorms:
					dst[i] = float32(0.1 * rng.NormFloat64())
				default:
					dst[i] = 0
				}
			}
			return nil
		}})
	}
	if err := writeFile(filepath.Join(dir, "config.json"), append(cfgJSON, '\n')); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, safetensors.SingleFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("init model: %w", err)
	}
	gen := map[string]any{"_from_model_config": true}
	if cfg.BOSTokenID != nil {
		gen["bos_token_id"] = *cfg.BOSTokenID
	}
	if len(cfg.EOSTokenID) == 1 {
		gen["eos_token_id"] = cfg.EOSTokenID[0]
	} else if len(cfg.EOSTokenID) > 1 {
		gen["eos_token_id"] = cfg.EOSTokenID
	}
	genJSON, _ := json.MarshalIndent(gen, "", "  ")
	if err := writeFile(filepath.Join(dir, "generation_config.json"), append(genJSON, '\n')); err != nil {
		return err
	}
	if opts.TokenizerJSON != nil {
		if err := writeFile(filepath.Join(dir, "tokenizer.json"), opts.TokenizerJSON); err != nil {
			return err
		}
		if opts.TokenizerConfigJSON != nil {
			if err := writeFile(filepath.Join(dir, "tokenizer_config.json"), opts.TokenizerConfigJSON); err != nil {
				return err
			}
		}
	}
	return nil
}

// tensorShapes maps each HF tensor name of cfg to its shape.
func tensorShapes(c *Config) map[string][]int {
	C, D := c.HiddenSize, c.Dim()
	out := map[string][]int{
		"model.embed_tokens.weight": {c.VocabSize, C},
		"model.norm.weight":         {C},
		"lm_head.weight":            {c.VocabSize, C},
	}
	lin := map[string][2]int{
		"self_attn.q_proj": {c.NumAttentionHeads * D, C},
		"self_attn.k_proj": {c.NumKeyValueHeads * D, C},
		"self_attn.v_proj": {c.NumKeyValueHeads * D, C},
		"self_attn.o_proj": {C, c.NumAttentionHeads * D},
		"mlp.gate_proj":    {c.IntermediateSize, C},
		"mlp.up_proj":      {c.IntermediateSize, C},
		"mlp.down_proj":    {C, c.IntermediateSize},
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		out[p+"input_layernorm.weight"] = []int{C}
		out[p+"post_attention_layernorm.weight"] = []int{C}
		for n, s := range lin {
			out[p+n+".weight"] = []int{s[0], s[1]}
			out[p+n+".bias"] = []int{s[0]}
		}
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Float64()
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

// writeFile writes data to path atomically (temporary file, fsync, rename).
func writeFile(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
