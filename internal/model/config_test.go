package model

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr error
		check   func(t *testing.T, c Config)
	}{
		{"llama3 with list eos and huge unknowns", `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
			"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":300,"rms_norm_eps":1e-5,
			"rope_theta":500000.0,"eos_token_id":[128001,128008],"bos_token_id":128000,"model_max_length":1000000000000000019884624838656,
			"max_position_embeddings":1e30,"some_list":[99999999999999999999999],
			"rope_scaling":{"type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}`,
			nil, func(t *testing.T, c Config) {
				if len(c.EOSTokenID) != 2 || c.EOSTokenID[1] != 128008 || *c.BOSTokenID != 128000 {
					t.Errorf("token ids %v %v", c.EOSTokenID, c.BOSTokenID)
				}
				if c.RopeScaling.RopeType != "llama3" || c.RopeScaling.OriginalMaxPositionEmbeddings != 8192 {
					t.Errorf("rope scaling %+v", c.RopeScaling)
				}
				if c.MaxPositionEmbeddings <= 0 {
					t.Errorf("max positions %d", c.MaxPositionEmbeddings)
				}
			}},
		{"defaults", `{"architectures":["MistralForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
			"num_attention_heads":4,"vocab_size":10,"eos_token_id":2,"hidden_size_float":1.5}`, nil, func(t *testing.T, c Config) {
			if c.NumKeyValueHeads != 4 || c.RopeTheta != 10000 || c.HiddenAct != "silu" || c.EOSTokenID[0] != 2 {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{"qwen2 bias", `{"architectures":["Qwen2ForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
			"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10}`, nil, func(t *testing.T, c Config) {
			if !c.QKVBias() || c.OBias() {
				t.Errorf("qwen2 bias flags")
			}
		}},
		{"unsupported arch", `{"architectures":["GPT2LMHeadModel"],"hidden_size":64}`, ErrArchitecture, nil},
		{"gqa mismatch", `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
			"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":10}`, ErrConfig, nil},
		{"huge hidden", `{"architectures":["LlamaForCausalLM"],"hidden_size":1e30,"intermediate_size":128,"num_hidden_layers":1,
			"num_attention_heads":4,"vocab_size":10}`, ErrConfig, nil},
		{"bad rope type", `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
			"num_attention_heads":4,"vocab_size":10,"rope_scaling":{"rope_type":"yarn","factor":4}}`, ErrConfig, nil},
		{"not json", `{`, ErrConfig, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr == ErrArchitecture && !strings.Contains(err.Error(), "LlamaForCausalLM") {
					t.Fatalf("error does not list the supported architectures: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestRopeLlama3(t *testing.T) {
	c := Config{HiddenSize: 2048, NumAttentionHeads: 32, RopeTheta: 500000,
		RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}}
	plain := c
	plain.RopeScaling = nil
	a, b := RopeInvFreq(&c), RopeInvFreq(&plain)
	if a[0] != b[0] {
		t.Errorf("high frequency changed: %g vs %g", a[0], b[0])
	}
	last := len(a) - 1
	if r := b[last] / a[last]; r < 31.99 || r > 32.01 {
		t.Errorf("low frequency scaled by %g, want 32", r)
	}
}
