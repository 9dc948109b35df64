// Package model holds the transformer architectures Gantry runs
// (Llama, Mistral, Qwen2): their configuration, their weights, loading
// from Hugging Face model directories, inference and generation.
package model

// Config is the part of a Hugging Face config.json that the supported
// architectures read. Field names follow the JSON keys.
type Config struct {
	Architectures         []string     `json:"architectures"`
	ModelType             string       `json:"model_type"`
	HiddenSize            int          `json:"hidden_size"`
	IntermediateSize      int          `json:"intermediate_size"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NumKeyValueHeads      int          `json:"num_key_value_heads"`
	HeadDim               int          `json:"head_dim,omitempty"` // 0: HiddenSize / NumAttentionHeads
	VocabSize             int          `json:"vocab_size"`
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	RMSNormEps            float64      `json:"rms_norm_eps"`
	RopeTheta             float64      `json:"rope_theta"`
	RopeScaling           *RopeScaling `json:"rope_scaling,omitempty"`
	TieWordEmbeddings     bool         `json:"tie_word_embeddings"`
	AttentionBias         bool         `json:"attention_bias,omitempty"` // Llama's optional q, k, v, o bias
	HiddenAct             string       `json:"hidden_act"`
	TorchDtype            string       `json:"torch_dtype,omitempty"`
	BOSTokenID            *int         `json:"bos_token_id,omitempty"`
	EOSTokenID            TokenIDs     `json:"eos_token_id,omitempty"`
	MLPBias               bool         `json:"mlp_bias,omitempty"`           // Llama's optional gate, up, down bias
	SlidingWindow         int          `json:"sliding_window,omitempty"`     // Mistral (and Qwen2 with UseSlidingWindow): attend to this many positions
	UseSlidingWindow      bool         `json:"use_sliding_window,omitempty"` // Qwen2 only
}

// RopeScaling is config.json's rope_scaling; only rope_type "llama3" changes
// the frequencies.
type RopeScaling struct {
	RopeType                      string  `json:"rope_type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// TokenIDs is a token id field that config files write either as one
// integer or as a list of them (Llama 3's eos_token_id).
type TokenIDs []int

// Dim returns the attention head dimension.
func (c *Config) Dim() int {
	if c.HeadDim > 0 {
		return c.HeadDim
	}
	return c.HiddenSize / c.NumAttentionHeads
}

// Weights are a model's parameters in fp32, laid out as in the Hugging Face
// checkpoint: every linear weight is row-major [out, in] (y = x·Wᵀ + b).
type Weights struct {
	Embed  []float32 // [vocab, hidden]
	Layers []Layer
	Norm   []float32 // final RMSNorm weight [hidden]
	LMHead []float32 // [vocab, hidden]; shares Embed's memory when tied
}

// Layer is one transformer block's parameters.
type Layer struct {
	InputNorm    []float32 // [hidden]
	PostAttnNorm []float32 // [hidden]
	Q, K, V, O   Linear    // Q [heads·dim, hidden], K and V [kvHeads·dim, hidden], O [hidden, heads·dim]
	Gate, Up     Linear    // [intermediate, hidden]
	Down         Linear    // [hidden, intermediate]
}

// Linear is y = x·Wᵀ + B with W row-major [Out, In] and B nil or [Out].
type Linear struct {
	W       []float32
	B       []float32
	Out, In int
}
