package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gantryml/gantry/internal/safetensors"
)

// ErrWeights is wrapped when a checkpoint lacks a tensor or holds one of
// the wrong shape.
var ErrWeights = errors.New("invalid model weights")

// GenerationConfig is the part of generation_config.json that generation
// reads; nil pointers mean "not set".
type GenerationConfig struct {
	BOSTokenID  *int     `json:"-"`
	EOSTokenID  TokenIDs `json:"eos_token_id,omitempty"`
	PadTokenID  *int     `json:"-"`
	DoSample    *bool    `json:"do_sample,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopK        *int     `json:"top_k,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	MaxNew      *int     `json:"max_new_tokens,omitempty"`
}

// Model is a loaded model: its normalized config, fp32 weights and
// optional generation defaults. Weights of F32 checkpoints alias a private
// memory mapping of the files: they may be modified (the files are never
// written) and stay valid until Close.
type Model struct {
	Config     Config
	Weights    Weights
	Generation GenerationConfig
	Dir        string           // the directory it was loaded from ("" when built in memory)
	DTypes     map[string]int   // checkpoint dtype → number of tensors, for inspection
	Shapes     map[string][]int // checkpoint tensor name → shape, for inspection
	set        *safetensors.Set // open checkpoint files, nil for in-memory models
	ropeFreq   []float32        // RoPE inverse frequencies [Dim/2], as HF computes them
}

// New wraps a config and weights built in memory (by the trainer or a
// test) as a Model. It normalizes cfg and checks every weight's length.
func New(cfg Config, w Weights) (*Model, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	if err := checkWeights(&cfg, &w); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Weights: w}
	m.ropeFreq = RopeInvFreq(&cfg)
	return m, nil
}

// Load reads the Hugging Face model directory dir: config.json,
// safetensors weights (model.safetensors or a sharded index) and the
// optional generation_config.json. F16 and BF16 weights are converted to
// fp32.
func Load(dir string) (*Model, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s: config.json: %w", dir, err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m := &Model{Config: cfg, Dir: dir, set: set, DTypes: map[string]int{}, Shapes: map[string][]int{}}
	for _, name := range set.Names() {
		t, _, _ := set.Info(name)
		m.DTypes[string(t.DType)]++
		m.Shapes[name] = t.Shape
	}
	if err := m.loadWeights(); err != nil {
		set.Close()
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m.ropeFreq = RopeInvFreq(&m.Config)
	if b, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		g, err := parseGenerationConfig(b)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("load model %s: generation_config.json: %w", dir, err)
		}
		m.Generation = g
	}
	return m, nil
}

func parseGenerationConfig(b []byte) (GenerationConfig, error) {
	var g GenerationConfig
	if err := json.Unmarshal(b, &g); err != nil {
		return g, err
	}
	var ids struct {
		BOS TokenIDs `json:"bos_token_id"`
		Pad TokenIDs `json:"pad_token_id"`
	}
	if err := json.Unmarshal(b, &ids); err != nil {
		return g, err
	}
	if len(ids.BOS) > 0 {
		g.BOSTokenID = &ids.BOS[0]
	}
	if len(ids.Pad) > 0 {
		g.PadTokenID = &ids.Pad[0]
	}
	return g, nil
}

// Close releases the checkpoint files; the weights must not be used
// afterwards unless they were converted (F16/BF16) or built in memory.
func (m *Model) Close() error {
	if m.set == nil {
		return nil
	}
	err := m.set.Close()
	m.set = nil
	return err
}

// tensor reads the named tensor, checking its shape.
func (m *Model) tensor(name string, shape ...int) ([]float32, error) {
	v, info, err := m.set.Float32(name)
	if errors.Is(err, safetensors.ErrNotFound) {
		return nil, fmt.Errorf("%w: tensor %s %v is missing", ErrWeights, name, shape)
	}
	if err != nil {
		return nil, err
	}
	if !sameShape(info.Shape, shape) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrWeights, name, info.Shape, shape)
	}
	return v, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// has reports whether the checkpoint holds the named tensor.
func (m *Model) has(name string) bool {
	_, _, ok := m.set.Info(name)
	return ok
}

func (m *Model) linear(prefix string, out, in int, bias bool) (Linear, error) {
	l := Linear{Out: out, In: in}
	var err error
	if l.W, err = m.tensor(prefix+".weight", out, in); err != nil {
		return l, err
	}
	if bias {
		if l.B, err = m.tensor(prefix+".bias", out); err != nil {
			return l, err
		}
	}
	return l, nil
}

// loadWeights reads every tensor the architecture needs by its Hugging
// Face name.
func (m *Model) loadWeights() error {
	c := &m.Config
	C, D := c.HiddenSize, c.Dim()
	qOut, kvOut := c.NumAttentionHeads*D, c.NumKeyValueHeads*D
	w := &m.Weights
	var err error
	if w.Embed, err = m.tensor("model.embed_tokens.weight", c.VocabSize, C); err != nil {
		return err
	}
	if w.Norm, err = m.tensor("model.norm.weight", C); err != nil {
		return err
	}
	if c.TieWordEmbeddings {
		w.LMHead = w.Embed
	} else if w.LMHead, err = m.tensor("lm_head.weight", c.VocabSize, C); err != nil {
		return err
	}
	w.Layers = make([]Layer, c.NumHiddenLayers)
	for i := range w.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		l := &w.Layers[i]
		if l.InputNorm, err = m.tensor(p+"input_layernorm.weight", C); err != nil {
			return err
		}
		if l.PostAttnNorm, err = m.tensor(p+"post_attention_layernorm.weight", C); err != nil {
			return err
		}
		specs := []struct {
			dst     *Linear
			name    string
			out, in int
			bias    bool
		}{
			{&l.Q, "self_attn.q_proj", qOut, C, c.QKVBias()},
			{&l.K, "self_attn.k_proj", kvOut, C, c.QKVBias()},
			{&l.V, "self_attn.v_proj", kvOut, C, c.QKVBias()},
			{&l.O, "self_attn.o_proj", C, qOut, c.OBias()},
			{&l.Gate, "mlp.gate_proj", c.IntermediateSize, C, c.MLPBias},
			{&l.Up, "mlp.up_proj", c.IntermediateSize, C, c.MLPBias},
			{&l.Down, "mlp.down_proj", C, c.IntermediateSize, c.MLPBias},
		}
		for _, s := range specs {
			if *s.dst, err = m.linear(p+s.name, s.out, s.in, s.bias); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkWeights verifies the lengths of in-memory weights against cfg.
func checkWeights(c *Config, w *Weights) error {
	C, D := c.HiddenSize, c.Dim()
	qOut, kvOut := c.NumAttentionHeads*D, c.NumKeyValueHeads*D
	check := func(name string, v []float32, n int) error {
		if len(v) != n {
			return fmt.Errorf("%w: %s has %d values, want %d", ErrWeights, name, len(v), n)
		}
		return nil
	}
	checkLin := func(name string, l Linear, out, in int, bias bool) error {
		if l.Out != out || l.In != in {
			return fmt.Errorf("%w: %s is [%d, %d], want [%d, %d]", ErrWeights, name, l.Out, l.In, out, in)
		}
		if err := check(name+".weight", l.W, out*in); err != nil {
			return err
		}
		if bias || l.B != nil {
			return check(name+".bias", l.B, out)
		}
		return nil
	}
	if err := check("embed", w.Embed, c.VocabSize*C); err != nil {
		return err
	}
	if err := check("lm_head", w.LMHead, c.VocabSize*C); err != nil {
		return err
	}
	if err := check("norm", w.Norm, C); err != nil {
		return err
	}
	if len(w.Layers) != c.NumHiddenLayers {
		return fmt.Errorf("%w: %d layers, want %d", ErrWeights, len(w.Layers), c.NumHiddenLayers)
	}
	for i, l := range w.Layers {
		p := fmt.Sprintf("layers.%d.", i)
		errs := []error{
			check(p+"input_layernorm", l.InputNorm, C),
			check(p+"post_attention_layernorm", l.PostAttnNorm, C),
			checkLin(p+"q_proj", l.Q, qOut, C, c.QKVBias()),
			checkLin(p+"k_proj", l.K, kvOut, C, c.QKVBias()),
			checkLin(p+"v_proj", l.V, kvOut, C, c.QKVBias()),
			checkLin(p+"o_proj", l.O, C, qOut, c.OBias()),
			checkLin(p+"gate_proj", l.Gate, c.IntermediateSize, C, c.MLPBias),
			checkLin(p+"up_proj", l.Up, c.IntermediateSize, C, c.MLPBias),
			checkLin(p+"down_proj", l.Down, C, c.IntermediateSize, c.MLPBias),
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// TensorNames returns the Hugging Face names of the tensors the config's
// architecture stores, in sorted order (lm_head.weight only when untied).
func TensorNames(c *Config) []string {
	names := []string{"model.embed_tokens.weight", "model.norm.weight"}
	if !c.TieWordEmbeddings {
		names = append(names, "lm_head.weight")
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		names = append(names, p+"input_layernorm.weight", p+"post_attention_layernorm.weight")
		for _, s := range []string{"q", "k", "v", "o"} {
			names = append(names, p+"self_attn."+s+"_proj.weight")
			if (s != "o" && c.QKVBias()) || (s == "o" && c.OBias()) {
				names = append(names, p+"self_attn."+s+"_proj.bias")
			}
		}
		for _, s := range []string{"gate", "up", "down"} {
			names = append(names, p+"mlp."+s+"_proj.weight")
			if c.MLPBias {
				names = append(names, p+"mlp."+s+"_proj.bias")
			}
		}
	}
	sort.Strings(names)
	return names
}

// NumParams returns the number of distinct parameters (a tied LM head
// counted once).
func (m *Model) NumParams() int64 {
	w := &m.Weights
	n := int64(len(w.Embed) + len(w.Norm))
	if !m.Config.TieWordEmbeddings {
		n += int64(len(w.LMHead))
	}
	for _, l := range w.Layers {
		n += int64(len(l.InputNorm) + len(l.PostAttnNorm))
		for _, lin := range []Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			n += int64(len(lin.W) + len(lin.B))
		}
	}
	return n
}
