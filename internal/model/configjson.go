package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrConfig is wrapped by every error about an unusable config.json.
var ErrConfig = errors.New("invalid model config")

// ErrArchitecture is wrapped when config.json names an architecture this
// runtime does not implement.
var ErrArchitecture = errors.New("unsupported architecture")

// SupportedArchitectures lists the config.json architectures Load accepts.
var SupportedArchitectures = []string{"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"}

// UnmarshalJSON accepts a token id written as an integer, a list of
// integers, or null. Ids that are not non-negative integers within int
// range are dropped rather than failing the whole file.
func (t *TokenIDs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*t = nil
		return nil
	}
	var nums []json.Number
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &nums); err != nil {
			return fmt.Errorf("token ids: %w", err)
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("token id: %w", err)
		}
		nums = []json.Number{n}
	}
	ids := TokenIDs{}
	for _, n := range nums {
		if v, ok := parseInt(n); ok && v >= 0 {
			ids = append(ids, v)
		}
	}
	*t = ids
	return nil
}

// parseInt reads an integral JSON number (1, 1.0, 1e3) that fits an int.
func parseInt(n json.Number) (int, bool) {
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil && int64(int(v)) == v {
		return int(v), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

// UnmarshalJSON reads a Hugging Face config.json leniently: unknown fields
// are ignored whatever their values, integers may be written as floats,
// max_position_embeddings saturates instead of overflowing, and
// rope_scaling's older "type" key is accepted for "rope_type". Defaults
// are not applied here; see Normalize.
func (c *Config) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	*c = Config{}
	var firstErr error
	fail := func(key string, err error) {
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: field %q: %v", ErrConfig, key, err)
		}
	}
	intField := func(key string, dst *int, saturate bool) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			fail(key, err)
			return
		}
		i, ok := parseInt(n)
		if !ok {
			if f, err := strconv.ParseFloat(string(n), 64); saturate && err == nil && f > 0 {
				*dst = math.MaxInt32
				return
			}
			fail(key, fmt.Errorf("%s is not an integer in range", n))
			return
		}
		*dst = i
	}
	floatField := func(key string, dst *float64) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			fail(key, err)
		}
	}
	anyField := func(key string, dst any) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			fail(key, err)
		}
	}
	anyField("architectures", &c.Architectures)
	anyField("model_type", &c.ModelType)
	intField("hidden_size", &c.HiddenSize, false)
	intField("intermediate_size", &c.IntermediateSize, false)
	intField("num_hidden_layers", &c.NumHiddenLayers, false)
	intField("num_attention_heads", &c.NumAttentionHeads, false)
	intField("num_key_value_heads", &c.NumKeyValueHeads, false)
	intField("head_dim", &c.HeadDim, false)
	intField("vocab_size", &c.VocabSize, false)
	intField("max_position_embeddings", &c.MaxPositionEmbeddings, true)
	floatField("rms_norm_eps", &c.RMSNormEps)
	floatField("rope_theta", &c.RopeTheta)
	anyField("tie_word_embeddings", &c.TieWordEmbeddings)
	anyField("attention_bias", &c.AttentionBias)
	anyField("mlp_bias", &c.MLPBias)
	anyField("hidden_act", &c.HiddenAct)
	anyField("torch_dtype", &c.TorchDtype)
	anyField("eos_token_id", &c.EOSTokenID)
	anyField("use_sliding_window", &c.UseSlidingWindow)
	intField("sliding_window", &c.SlidingWindow, true)
	if v, ok := raw["bos_token_id"]; ok {
		var ids TokenIDs
		if err := json.Unmarshal(v, &ids); err == nil && len(ids) > 0 {
			id := ids[0]
			c.BOSTokenID = &id
		}
	}
	if v, ok := raw["rope_scaling"]; ok && string(v) != "null" {
		var rs struct {
			RopeType                      string      `json:"rope_type"`
			Type                          string      `json:"type"`
			Factor                        float64     `json:"factor"`
			LowFreqFactor                 float64     `json:"low_freq_factor"`
			HighFreqFactor                float64     `json:"high_freq_factor"`
			OriginalMaxPositionEmbeddings json.Number `json:"original_max_position_embeddings"`
		}
		if err := json.Unmarshal(v, &rs); err != nil {
			fail("rope_scaling", err)
		} else {
			c.RopeScaling = &RopeScaling{RopeType: rs.RopeType, Factor: rs.Factor, LowFreqFactor: rs.LowFreqFactor, HighFreqFactor: rs.HighFreqFactor}
			if c.RopeScaling.RopeType == "" {
				c.RopeScaling.RopeType = rs.Type
			}
			if rs.OriginalMaxPositionEmbeddings != "" {
				if n, ok := parseInt(rs.OriginalMaxPositionEmbeddings); ok {
					c.RopeScaling.OriginalMaxPositionEmbeddings = n
				} else {
					fail("rope_scaling.original_max_position_embeddings", fmt.Errorf("%s is not an integer", rs.OriginalMaxPositionEmbeddings))
				}
			}
		}
	}
	return firstErr
}

// Architecture returns the first entry of Architectures ("" when none).
func (c *Config) Architecture() string {
	if len(c.Architectures) == 0 {
		return ""
	}
	return c.Architectures[0]
}

// QKVBias reports whether the q, k and v projections have biases (Qwen2
// always; Llama with attention_bias).
func (c *Config) QKVBias() bool {
	return c.Architecture() == "Qwen2ForCausalLM" || c.AttentionBias
}

// OBias reports whether the attention output projection has a bias
// (Llama with attention_bias).
func (c *Config) OBias() bool {
	return c.Architecture() != "Qwen2ForCausalLM" && c.AttentionBias
}

// Window returns the sliding attention window in positions, or 0 for
// full causal attention: Mistral's sliding_window, Qwen2's only when
// use_sliding_window is set.
func (c *Config) Window() int {
	switch c.Architecture() {
	case "MistralForCausalLM":
		return c.SlidingWindow
	case "Qwen2ForCausalLM":
		if c.UseSlidingWindow {
			return c.SlidingWindow
		}
	}
	return 0
}

// Limits on config dimensions: far above any supported model, low enough
// that derived sizes cannot overflow.
const (
	maxDim    = 1 << 20
	maxLayers = 1 << 10
	maxVocab  = 1 << 24
)

// Normalize fills in the defaults the Hugging Face config classes apply
// (num_key_value_heads = num_attention_heads, rms_norm_eps, rope_theta,
// hidden_act silu, max_position_embeddings) and validates the result: a
// supported architecture and positive, consistent dimensions.
func (c *Config) Normalize() error {
	arch := c.Architecture()
	ok := false
	for _, a := range SupportedArchitectures {
		if arch == a {
			ok = true
		}
	}
	if !ok {
		if arch == "" {
			arch = "(none)"
		}
		return fmt.Errorf("%w %q: supported are %s", ErrArchitecture, arch, strings.Join(SupportedArchitectures, ", "))
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-6
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if c.MaxPositionEmbeddings == 0 {
		c.MaxPositionEmbeddings = 2048
	}
	checks := []struct {
		name string
		v    int
		max  int
	}{
		{"hidden_size", c.HiddenSize, maxDim},
		{"intermediate_size", c.IntermediateSize, maxDim},
		{"num_hidden_layers", c.NumHiddenLayers, maxLayers},
		{"num_attention_heads", c.NumAttentionHeads, maxDim},
		{"num_key_value_heads", c.NumKeyValueHeads, maxDim},
		{"vocab_size", c.VocabSize, maxVocab},
	}
	for _, ch := range checks {
		if ch.v <= 0 || ch.v > ch.max {
			return fmt.Errorf("%w: %s = %d, want 1..%d", ErrConfig, ch.name, ch.v, ch.max)
		}
	}
	if c.HeadDim < 0 || c.HeadDim > maxDim {
		return fmt.Errorf("%w: head_dim = %d", ErrConfig, c.HeadDim)
	}
	if c.HeadDim == 0 && c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("%w: hidden_size %d is not a multiple of num_attention_heads %d", ErrConfig, c.HiddenSize, c.NumAttentionHeads)
	}
	if c.Dim()%2 != 0 {
		return fmt.Errorf("%w: head dimension %d is odd (rotary embeddings need pairs)", ErrConfig, c.Dim())
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("%w: num_attention_heads %d is not a multiple of num_key_value_heads %d", ErrConfig, c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HiddenAct != "silu" {
		return fmt.Errorf("%w: hidden_act %q (only silu is implemented)", ErrConfig, c.HiddenAct)
	}
	if !(c.RMSNormEps > 0) || !(c.RopeTheta > 0) {
		return fmt.Errorf("%w: rms_norm_eps %g and rope_theta %g must be positive", ErrConfig, c.RMSNormEps, c.RopeTheta)
	}
	if rs := c.RopeScaling; rs != nil {
		switch rs.RopeType {
		case "", "default":
		case "linear":
			if !(rs.Factor > 0) {
				return fmt.Errorf("%w: rope_scaling linear factor %g", ErrConfig, rs.Factor)
			}
		case "llama3":
			if !(rs.Factor > 0) || !(rs.LowFreqFactor > 0) || !(rs.HighFreqFactor > rs.LowFreqFactor) || rs.OriginalMaxPositionEmbeddings <= 0 {
				return fmt.Errorf("%w: rope_scaling llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, got %+v", ErrConfig, *rs)
			}
		default:
			return fmt.Errorf("%w: rope_scaling type %q (supported: default, linear, llama3)", ErrConfig, rs.RopeType)
		}
	}
	return nil
}

// ParseConfig decodes and normalizes a config.json.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		if errors.Is(err, ErrConfig) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, c.Normalize()
}
