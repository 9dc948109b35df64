package peft

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/gantryml/gantry/internal/model"
)

// peftName matches PEFT's tensor names for adapters on Llama-family layers.
var peftName = regexp.MustCompile(`^base_model\.model\.model\.layers\.(\d+)\.(self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)\.(lora_A\.weight|lora_B\.weight|ia3_l)$`)

// hfLayerName matches Hugging Face's per-layer tensor names.
var hfLayerName = regexp.MustCompile(`^model\.layers\.(\d+)\.(self_attn\.(?:q|k|v|o)_proj\.(?:weight|bias)|mlp\.(?:gate|up|down)_proj\.(?:weight|bias)|input_layernorm\.weight|post_attention_layernorm\.weight)$`)

// linear returns the layer's projection named module ("self_attn.q_proj").
func linear(l *model.Layer, module string) *model.Linear {
	switch module {
	case "self_attn.q_proj":
		return &l.Q
	case "self_attn.k_proj":
		return &l.K
	case "self_attn.v_proj":
		return &l.V
	case "self_attn.o_proj":
		return &l.O
	case "mlp.gate_proj":
		return &l.Gate
	case "mlp.up_proj":
		return &l.Up
	case "mlp.down_proj":
		return &l.Down
	}
	return nil
}

func shapeIs(shape []int, want ...int) bool { return slices.Equal(shape, want) }

// Merge folds the adapter into the base weights w of a model with config
// cfg, in place: LoRA W += scale·B·A; IA3 multiplies the rows of W_k and
// W_v (and their biases) and the columns of W_down by its vectors;
// Vanilla copies its tensors over the base ones. Every tensor is checked
// against the model before anything is changed, so on error w is
// untouched; an error names the tensor and both shapes.
func (a *Adapter) Merge(cfg *model.Config, w *model.Weights) error {
	type op struct {
		dst  *model.Linear
		vec  []float32 // destination of a vanilla copy
		t    *Tensor
		part string
		pair *Tensor // LoRA: the matching lora_B for a lora_A
	}
	var ops []op
	for i := range a.Tensors {
		t := &a.Tensors[i]
		switch a.Kind {
		case LoRA, IA3:
			m := peftName.FindStringSubmatch(t.Name)
			if m == nil {
				return fmt.Errorf("merge adapter: tensor %q is not a supported PEFT layer tensor", t.Name)
			}
			li, _ := strconv.Atoi(m[1])
			if li >= len(w.Layers) {
				return fmt.Errorf("merge adapter: tensor %q: layer %d, but the model has %d layers", t.Name, li, len(w.Layers))
			}
			lin := linear(&w.Layers[li], m[2])
			part := m[3]
			switch {
			case a.Kind == LoRA && part == "lora_A.weight":
				r := a.Config.R
				if !shapeIs(t.Shape, r, lin.In) {
					return fmt.Errorf("merge adapter: tensor %q has shape %v, want [%d %d]", t.Name, t.Shape, r, lin.In)
				}
				bName := t.Name[:len(t.Name)-len("lora_A.weight")] + "lora_B.weight"
				b, ok := a.Tensor(bName)
				if !ok {
					return fmt.Errorf("merge adapter: tensor %q has no matching %q", t.Name, bName)
				}
				if !shapeIs(b.Shape, lin.Out, r) {
					return fmt.Errorf("merge adapter: tensor %q has shape %v, want [%d %d]", b.Name, b.Shape, lin.Out, r)
				}
				ops = append(ops, op{dst: lin, t: t, part: part, pair: b})
			case a.Kind == LoRA && part == "lora_B.weight":
				aName := t.Name[:len(t.Name)-len("lora_B.weight")] + "lora_A.weight"
				if _, ok := a.Tensor(aName); !ok {
					return fmt.Errorf("merge adapter: tensor %q has no matching %q", t.Name, aName)
				}
			case a.Kind == IA3 && part == "ia3_l":
				// PEFT stores a feed-forward module's vector as [1, in]
				// (scaling the input) and any other as [out, 1] (scaling
				// the output); the shape says which.
				switch {
				case shapeIs(t.Shape, lin.Out, 1):
					ops = append(ops, op{dst: lin, t: t, part: "ia3_out"})
				case shapeIs(t.Shape, 1, lin.In):
					ops = append(ops, op{dst: lin, t: t, part: "ia3_in"})
				default:
					return fmt.Errorf("merge adapter: tensor %q has shape %v, want [%d 1] or [1 %d]", t.Name, t.Shape, lin.Out, lin.In)
				}
			default:
				return fmt.Errorf("merge adapter: tensor %q does not belong in a %s adapter", t.Name, a.Kind)
			}
		case Vanilla:
			dst, want, err := hfTensor(cfg, w, t.Name)
			if err != nil {
				return fmt.Errorf("merge adapter: %w", err)
			}
			if !slices.Equal(t.Shape, want) {
				return fmt.Errorf("merge adapter: tensor %q has shape %v, want %v", t.Name, t.Shape, want)
			}
			if len(dst) != len(t.Data) {
				return fmt.Errorf("merge adapter: tensor %q: the model holds %d values, the adapter %d", t.Name, len(dst), len(t.Data))
			}
			ops = append(ops, op{vec: dst, t: t, part: "copy"})
		default:
			return fmt.Errorf("merge adapter: unknown kind %q", a.Kind)
		}
	}
	scale := float32(a.Scale())
	for _, o := range ops {
		switch o.part {
		case "lora_A.weight":
			loraMerge(o.dst.W, o.pair.Data, o.t.Data, o.dst.Out, o.dst.In, a.Config.R, scale)
		case "ia3_out":
			for r := 0; r < o.dst.Out; r++ {
				s := o.t.Data[r]
				row := o.dst.W[r*o.dst.In : (r+1)*o.dst.In]
				for c := range row {
					row[c] *= s
				}
				if o.dst.B != nil {
					o.dst.B[r] *= s
				}
			}
		case "ia3_in":
			for r := 0; r < o.dst.Out; r++ {
				row := o.dst.W[r*o.dst.In : (r+1)*o.dst.In]
				for c := range row {
					row[c] *= o.t.Data[c]
				}
			}
		case "copy":
			copy(o.vec, o.t.Data)
		}
	}
	return nil
}

// loraMerge computes W += scale·B·A for W [out, in], B [out, r], A [r, in],
// all row-major.
func loraMerge(w, b, a []float32, out, in, r int, scale float32) {
	for o := 0; o < out; o++ {
		row := w[o*in : (o+1)*in]
		for k := 0; k < r; k++ {
			s := scale * b[o*r+k]
			if s == 0 {
				continue
			}
			ar := a[k*in : (k+1)*in]
			for c := range row {
				row[c] += s * ar[c]
			}
		}
	}
}

// hfTensor returns the slice of w holding the Hugging Face tensor name
// and its shape.
func hfTensor(cfg *model.Config, w *model.Weights, name string) ([]float32, []int, error) {
	switch name {
	case "model.norm.weight":
		return w.Norm, []int{len(w.Norm)}, nil
	case "model.embed_tokens.weight":
		return w.Embed, []int{cfg.VocabSize, cfg.HiddenSize}, nil
	case "lm_head.weight":
		return w.LMHead, []int{cfg.VocabSize, cfg.HiddenSize}, nil
	}
	m := hfLayerName.FindStringSubmatch(name)
	if m == nil {
		return nil, nil, fmt.Errorf("tensor %q is not a supported model tensor", name)
	}
	li, _ := strconv.Atoi(m[1])
	if li >= len(w.Layers) {
		return nil, nil, fmt.Errorf("tensor %q: layer %d, but the model has %d layers", name, li, len(w.Layers))
	}
	l := &w.Layers[li]
	switch m[2] {
	case "input_layernorm.weight":
		return l.InputNorm, []int{len(l.InputNorm)}, nil
	case "post_attention_layernorm.weight":
		return l.PostAttnNorm, []int{len(l.PostAttnNorm)}, nil
	}
	module, field := m[2], "weight"
	if n := len(module); module[n-5:] == ".bias" {
		module, field = module[:n-5], "bias"
	} else {
		module = module[:n-7]
	}
	lin := linear(l, module)
	if field == "bias" {
		if lin.B == nil {
			return nil, nil, fmt.Errorf("tensor %q: the model has no such bias", name)
		}
		return lin.B, []int{lin.Out}, nil
	}
	return lin.W, []int{lin.Out, lin.In}, nil
}
