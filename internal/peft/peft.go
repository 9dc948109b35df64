// Package peft reads, writes and merges fine-tuning adapters: LoRA and
// (IA)³ ("T-Few") in Hugging Face PEFT's format (adapter_config.json +
// adapter_model.safetensors, loadable by PEFT and vLLM), and Gantry's
// Vanilla format (the trained layers' full weights under their Hugging Face
// names plus a gantry_adapter.json manifest).
package peft

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/gantryml/gantry/internal/safetensors"
)

// File names inside an adapter directory.
const (
	ConfigFile   = "adapter_config.json"       // PEFT's config (LoRA, IA3)
	WeightsFile  = "adapter_model.safetensors" // the adapter tensors (all kinds)
	ManifestFile = "gantry_adapter.json"       // Vanilla's manifest
)

// Kind is an adapter's type.
type Kind string

// The adapter kinds.
const (
	LoRA    Kind = "lora"
	IA3     Kind = "ia3"
	Vanilla Kind = "vanilla"
)

// ErrNotAdapter is returned by Load for a directory that holds neither
// adapter_config.json nor gantry_adapter.json.
var ErrNotAdapter = errors.New("not an adapter directory")

// Config is PEFT's adapter_config.json for LoRA and IA3. Fields that do not
// apply to a kind are omitted when written (PEFT's config classes reject
// unknown keys in some versions).
type Config struct {
	PeftType            string   `json:"peft_type"` // "LORA" or "IA3"
	TaskType            string   `json:"task_type"` // "CAUSAL_LM"
	BaseModelNameOrPath string   `json:"base_model_name_or_path"`
	TargetModules       Modules  `json:"target_modules"`
	FeedforwardModules  Modules  `json:"feedforward_modules,omitempty"` // IA3
	FanInFanOut         bool     `json:"fan_in_fan_out"`
	InferenceMode       bool     `json:"inference_mode"`
	ModulesToSave       []string `json:"modules_to_save"`

	// LoRA only.
	R           int     `json:"r,omitempty"`
	LoRAAlpha   float64 `json:"lora_alpha,omitempty"`
	LoRADropout float64 `json:"lora_dropout,omitempty"`
	Bias        string  `json:"bias,omitempty"`
	UseRSLoRA   bool    `json:"use_rslora,omitempty"`
	UseDoRA     bool    `json:"use_dora,omitempty"`
}

// MarshalJSON writes the fields of c's peft_type: a LoRA config always
// has r, lora_alpha, lora_dropout and bias (even when zero); an IA3 config
// none of them.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // without this method
	if c.PeftType != "LORA" {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		R           int     `json:"r"`
		LoRAAlpha   float64 `json:"lora_alpha"`
		LoRADropout float64 `json:"lora_dropout"`
		Bias        string  `json:"bias"`
	}{plain(c), c.R, c.LoRAAlpha, c.LoRADropout, c.Bias})
}

// Modules is a list of module names; PEFT also writes a single regular
// expression as a JSON string, which Modules reads as a one-element list.
type Modules []string

// UnmarshalJSON accepts a JSON list of strings, a string, or null.
func (m *Modules) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = Modules{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("modules: want a list of strings or a string: %w", err)
	}
	*m = l
	return nil
}

// Manifest is Vanilla's gantry_adapter.json.
type Manifest struct {
	Type          string   `json:"type"` // "vanilla"
	BaseModel     string   `json:"base_model"`
	NumLastLayers int      `json:"num_last_layers"`
	Layers        []int    `json:"layers"`  // indices of the trained layers
	Tensors       []string `json:"tensors"` // HF names of the tensors in adapter_model.safetensors
}

// Tensor is one adapter tensor: fp32 values, row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Adapter is an adapter in memory. For LoRA and IA3 Config is set and
// tensor names are PEFT's
// ("base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" [r, in],
// "...lora_B.weight" [out, r], "...k_proj.ia3_l" [out, 1],
// "...mlp.down_proj.ia3_l" [1, in]); for Vanilla Manifest is set and names
// are Hugging Face's ("model.layers.N.mlp.up_proj.weight",
// "model.norm.weight").
type Adapter struct {
	Kind     Kind
	Config   *Config
	Manifest *Manifest
	Tensors  []Tensor
}

// NewLoRA returns a LoRA adapter with PEFT's defaults for the other
// config fields.
func NewLoRA(baseModel string, r int, alpha, dropout float64, targets []string, tensors []Tensor) *Adapter {
	return &Adapter{Kind: LoRA, Tensors: tensors, Config: &Config{
		PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModelNameOrPath: baseModel,
		TargetModules: slices.Clone(targets), InferenceMode: true,
		R: r, LoRAAlpha: alpha, LoRADropout: dropout, Bias: "none",
	}}
}

// NewIA3 returns an IA3 adapter (T-Few) scaling k_proj, v_proj and down_proj,
// with down_proj as the feed-forward module.
func NewIA3(baseModel string, tensors []Tensor) *Adapter {
	return &Adapter{Kind: IA3, Tensors: tensors, Config: &Config{
		PeftType: "IA3", TaskType: "CAUSAL_LM", BaseModelNameOrPath: baseModel,
		TargetModules:      []string{"k_proj", "v_proj", "down_proj"},
		FeedforwardModules: []string{"down_proj"}, InferenceMode: true,
	}}
}

// NewVanilla returns a Vanilla adapter holding full tensors of the last
// numLastLayers layers (layers lists their indices).
func NewVanilla(baseModel string, numLastLayers int, layers []int, tensors []Tensor) *Adapter {
	m := &Manifest{Type: string(Vanilla), BaseModel: baseModel, NumLastLayers: numLastLayers, Layers: slices.Clone(layers)}
	for _, t := range tensors {
		m.Tensors = append(m.Tensors, t.Name)
	}
	return &Adapter{Kind: Vanilla, Manifest: m, Tensors: tensors}
}

// Scale is LoRA's multiplier of B·A: lora_alpha / r (rsLoRA: / √r).
func (a *Adapter) Scale() float64 {
	if a.Config == nil || a.Config.R == 0 {
		return 1
	}
	if a.Config.UseRSLoRA {
		return a.Config.LoRAAlpha / math.Sqrt(float64(a.Config.R))
	}
	return a.Config.LoRAAlpha / float64(a.Config.R)
}

// Tensor returns the named tensor.
func (a *Adapter) Tensor(name string) (*Tensor, bool) {
	for i := range a.Tensors {
		if a.Tensors[i].Name == name {
			return &a.Tensors[i], true
		}
	}
	return nil, false
}

// Save writes a into dir (created if needed): the tensors to
// adapter_model.safetensors, then the config or manifest, each file
// atomically (temporary file, fsync, rename).
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	ts := make([]safetensors.Tensor, len(a.Tensors))
	for i, t := range a.Tensors {
		ts[i] = safetensors.Tensor{Name: t.Name, Shape: t.Shape, Data: t.Data}
	}
	meta := map[string]string{"format": "pt"}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, meta); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	var name string
	var v any
	switch a.Kind {
	case LoRA, IA3:
		if a.Config == nil {
			return fmt.Errorf("save adapter: %s adapter without a config", a.Kind)
		}
		name, v = ConfigFile, a.Config
	case Vanilla:
		if a.Manifest == nil {
			return fmt.Errorf("save adapter: vanilla adapter without a manifest")
		}
		name, v = ManifestFile, a.Manifest
	default:
		return fmt.Errorf("save adapter: unknown kind %q", a.Kind)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, name), append(b, '\n'))
}

// WriteFileAtomic writes data to path (mode 0644) through a temporary file
// in the same directory, fsynced and renamed over path.
func WriteFileAtomic(path string, data []byte) (err error) {
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
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Load reads the adapter in dir: PEFT LoRA or IA3 (adapter_config.json) or
// Gantry Vanilla (gantry_adapter.json), with its tensors converted to fp32
// and copied into memory. It returns an error wrapping ErrNotAdapter when
// dir holds neither file.
func Load(dir string) (*Adapter, error) {
	a := &Adapter{}
	if b, err := os.ReadFile(filepath.Join(dir, ManifestFile)); err == nil {
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("load adapter %s: %s: %w", dir, ManifestFile, err)
		}
		if m.Type != string(Vanilla) {
			return nil, fmt.Errorf("load adapter %s: %s: type %q, want %q", dir, ManifestFile, m.Type, Vanilla)
		}
		a.Kind, a.Manifest = Vanilla, &m
	} else if b, err := os.ReadFile(filepath.Join(dir, ConfigFile)); err == nil {
		var c Config
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("load adapter %s: %s: %w", dir, ConfigFile, err)
		}
		switch c.PeftType {
		case "LORA":
			a.Kind = LoRA
			if c.R <= 0 {
				return nil, fmt.Errorf("load adapter %s: %s: r = %d, want > 0", dir, ConfigFile, c.R)
			}
			if c.UseDoRA {
				return nil, fmt.Errorf("load adapter %s: DoRA adapters are not supported", dir)
			}
			if c.FanInFanOut {
				return nil, fmt.Errorf("load adapter %s: fan_in_fan_out adapters are not supported", dir)
			}
		case "IA3":
			a.Kind = IA3
		default:
			return nil, fmt.Errorf("load adapter %s: %s: peft_type %q is not supported (want LORA or IA3)", dir, ConfigFile, c.PeftType)
		}
		a.Config = &c
	} else if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load adapter %s: %w (no %s or %s)", dir, ErrNotAdapter, ConfigFile, ManifestFile)
	} else {
		return nil, fmt.Errorf("load adapter %s: %w", dir, err)
	}

	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("load adapter %s: %w", dir, err)
	}
	defer f.Close()
	for _, info := range f.Tensors() {
		vals, _, err := f.Float32(info.Name)
		if err != nil {
			return nil, fmt.Errorf("load adapter %s: %w", dir, err)
		}
		a.Tensors = append(a.Tensors, Tensor{Name: info.Name, Shape: slices.Clone(info.Shape), Data: slices.Clone(vals)})
	}
	slices.SortFunc(a.Tensors, func(x, y Tensor) int {
		switch {
		case x.Name < y.Name:
			return -1
		case x.Name > y.Name:
			return 1
		}
		return 0
	})
	if a.Kind == Vanilla {
		for _, n := range a.Manifest.Tensors {
			if _, ok := a.Tensor(n); !ok {
				return nil, fmt.Errorf("load adapter %s: %s lists tensor %q, which %s lacks", dir, ManifestFile, n, WeightsFile)
			}
		}
	}
	return a, nil
}
