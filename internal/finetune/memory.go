package finetune

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
)

// EstimateOptions describe a training run for Estimate.
type EstimateOptions struct {
	Method        nn.Method
	Batch         int // examples per step
	SeqLen        int // tokens of the longest example
	LoRARank      int // LoRA only; 0 means 8
	NumLastLayers int // Vanilla only
}

// Estimation is a run's estimated memory, in bytes.
type Estimation struct {
	// Weights are the base model's parameters in float32.
	Weights int64
	// State is the trainable parameters' gradients, AdamW moments, best
	// snapshot and checkpoint copies (and LoRA/IA3 parameters themselves).
	State int64
	// Activations are what the forward pass keeps for the backward pass
	// for one batch, with the logits and their gradient.
	Activations int64
}

// Total is the sum of the parts.
func (e Estimation) Total() int64 { return e.Weights + e.State + e.Activations }

// Estimate returns the memory a run needs, from the model config, its
// parameter count and the batch shape. It is an upper-bound style
// estimate of the dominant terms, not an exact count:
//
//	weights      4·P
//	state        4·trainable·6 (param copy for PEFT, grad, Adam m and v, best, checkpoint)
//	activations  4·B·T·(L·(14·C + 5·I + 2·H·T) + 2·V)
//
// with C the hidden size, I the MLP size, H the attention heads, L the
// layers and V the vocabulary.
func Estimate(cfg *model.Config, params int64, o EstimateOptions) Estimation {
	const f32 = 4
	B, T := int64(max(o.Batch, 1)), int64(max(o.SeqLen, 1))
	C, I := int64(cfg.HiddenSize), int64(cfg.IntermediateSize)
	H, L, V := int64(cfg.NumAttentionHeads), int64(cfg.NumHiddenLayers), int64(cfg.VocabSize)
	kv := C
	if cfg.NumAttentionHeads > 0 && cfg.NumKeyValueHeads > 0 {
		kv = C * int64(cfg.NumKeyValueHeads) / int64(cfg.NumAttentionHeads)
	}
	var trainable int64
	switch o.Method {
	case nn.Vanilla:
		n := int64(min(max(o.NumLastLayers, 1), cfg.NumHiddenLayers))
		perLayer := 2*C + C*C + 2*C*kv + C*C + 3*C*I
		trainable = n * perLayer
	case nn.TFew:
		trainable = L * (2*kv + I)
	default:
		r := int64(o.LoRARank)
		if r <= 0 {
			r = 8
		}
		// q, k, v, o, gate, up, down: r·(in + out) each.
		trainable = L * r * ((C + C) + 2*(C+kv) + (C + C) + 2*(C+I) + (I + C))
	}
	act := B * T * (L*(14*C+5*I+2*H*T) + 2*V)
	return Estimation{Weights: f32 * params, State: f32 * 6 * trainable, Activations: f32 * act}
}

// MemAvailable returns MemAvailable from /proc/meminfo, in bytes.
func MemAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	return parseMemAvailable(b)
}

// parseMemAvailable reads the "MemAvailable: N kB" line of a meminfo file.
func parseMemAvailable(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			n, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("meminfo: bad MemAvailable %q", f[1])
			}
			unit := int64(1)
			if len(f) >= 3 && string(f[2]) == "kB" {
				unit = 1024
			}
			return n * unit, nil
		}
	}
	return 0, fmt.Errorf("meminfo: no MemAvailable line")
}
