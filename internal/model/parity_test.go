package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gantryml/gantry/internal/safetensors"
)

// parityCases are the model shapes checked against the PyTorch reference.
var parityCases = []struct {
	name   string
	preset string
	dtype  safetensors.DType
	edit   func(map[string]any)
}{
	{"tiny llama", "tiny", safetensors.F32, nil},
	{"qwen2 qkv bias tied", "tiny-qwen2", safetensors.F32, nil},
	{"llama3 rope scaling tied gqa4", "tiny-llama3", safetensors.F32, nil},
	{"llama attention bias", "tiny", safetensors.F32, func(m map[string]any) { m["attention_bias"] = true }},
	{"mistral sliding window", "tiny", safetensors.F32, func(m map[string]any) {
		m["architectures"] = []string{"MistralForCausalLM"}
		m["model_type"] = "mistral"
		m["sliding_window"] = 5
	}},
	{"bf16 weights", "tiny", safetensors.BF16, nil},
	{"f16 weights", "tiny-qwen2", safetensors.F16, nil},
}

func TestTorchParity(t *testing.T) {
	requireTorch(t)
	const B, T = 2, 12
	for _, tc := range parityCases {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := newTestModel(t, tc.preset, tc.dtype, tc.edit)
			V := m.Config.VocabSize
			r := rand.New(rand.NewPCG(1, 2))
			flat := randomIDs(r, B*T, V)
			ids := [][]int{flat[:T], flat[T:]}
			got, err := m.Forward(context.Background(), nil, flat, nil, B, T, false)
			if err != nil {
				t.Fatal(err)
			}
			// The same rows, the second left-padded by 4 (padding slots hold id 0).
			pad := 4
			pflat := append([]int{}, flat...)
			valid := make([]bool, B*T)
			mask := [][]int{make([]int, T), make([]int, T)}
			for i := range valid {
				valid[i] = i >= T+pad || i < T
				if valid[i] {
					mask[i/T][i%T] = 1
				} else {
					pflat[i] = 0
				}
			}
			refs, losses := torchForwardMany(t, dir, []torchRequest{{IDs: ids}, {IDs: [][]int{pflat[:T], pflat[T:]}, Mask: mask}}, V)
			want, wantLoss, wantPad := refs[0], losses[0], refs[1]
			compareLogits(t, "logits", got, want, 1e-4)
			targets := make([]int, B*T)
			for i := range targets {
				if i%T == T-1 {
					targets[i] = -1
				} else {
					targets[i] = flat[i+1]
				}
			}
			if loss := CrossEntropy(got, targets, V); math.Abs(loss-wantLoss) > 1e-5 {
				t.Errorf("loss %.7f, torch %.7f", loss, wantLoss)
			}

			// Padded: against torch with the mask, and Go's padded row
			// against its own unpadded run.
			gotPad, err := m.Forward(context.Background(), nil, pflat, valid, B, T, false)
			if err != nil {
				t.Fatal(err)
			}
			realGot, realWant := pick(gotPad, valid, V), pick(wantPad, valid, V)
			compareLogits(t, "padded logits vs torch", realGot, realWant, 1e-4)
			single, err := m.Forward(context.Background(), nil, pflat[T+pad:], nil, 1, T-pad, false)
			if err != nil {
				t.Fatal(err)
			}
			compareLogits(t, "padded row vs unpadded row", gotPad[(T+pad)*V:], single, 1e-5)
		})
	}
}

// pick keeps the logits rows whose slot is valid.
func pick(logits []float32, valid []bool, V int) []float32 {
	var out []float32
	for i, ok := range valid {
		if ok {
			out = append(out, logits[i*V:(i+1)*V]...)
		}
	}
	return out
}

func TestKVCacheMatchesFullForward(t *testing.T) {
	for _, tc := range parityCases[:3] {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestModel(t, tc.preset, tc.dtype, tc.edit)
			V := m.Config.VocabSize
			const B, T, prefix = 2, 10, 4
			r := rand.New(rand.NewPCG(3, 4))
			ids := randomIDs(r, B*T, V)
			valid := make([]bool, B*T)
			for i := range valid {
				valid[i] = !(i >= T && i < T+2) // row 1 left-padded by 2
			}
			full, err := m.Forward(context.Background(), nil, ids, valid, B, T, false)
			if err != nil {
				t.Fatal(err)
			}
			cache, err := m.NewCache(B, T)
			if err != nil {
				t.Fatal(err)
			}
			pre := append(append([]int{}, ids[:prefix]...), ids[T:T+prefix]...)
			preValid := append(append([]bool{}, valid[:prefix]...), valid[T:T+prefix]...)
			if _, err := m.Forward(context.Background(), cache, pre, preValid, B, prefix, false); err != nil {
				t.Fatal(err)
			}
			for step := prefix; step < T; step++ {
				got, err := m.Forward(context.Background(), cache, []int{ids[step], ids[T+step]}, nil, B, 1, true)
				if err != nil {
					t.Fatal(err)
				}
				want := append(append([]float32{}, full[step*V:(step+1)*V]...), full[(T+step)*V:(T+step+1)*V]...)
				compareLogits(t, "cached step", got, want, 1e-5)
			}
			if _, err := m.Forward(context.Background(), cache, []int{1, 1}, nil, B, 1, true); err == nil {
				t.Fatal("forward past the cache's capacity: no error")
			}
			// Grown, the cache continues exactly as a larger one would.
			if err := cache.Grow(T + 3); err != nil {
				t.Fatal(err)
			}
			big, err := m.NewCache(B, T+3)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Forward(context.Background(), big, ids, valid, B, T, false); err != nil {
				t.Fatal(err)
			}
			for step := 0; step < 3; step++ {
				next := []int{step + 1, step + 2}
				got, err := m.Forward(context.Background(), cache, next, nil, B, 1, true)
				if err != nil {
					t.Fatal(err)
				}
				want, err := m.Forward(context.Background(), big, next, nil, B, 1, true)
				if err != nil {
					t.Fatal(err)
				}
				compareLogits(t, "grown cache", got, want, 1e-5)
			}
		})
	}
}

func TestForwardRejectsBadTokens(t *testing.T) {
	m, _ := newTestModel(t, "tiny", safetensors.F32, nil)
	if _, err := m.Forward(context.Background(), nil, []int{1, m.Config.VocabSize}, nil, 1, 2, false); err == nil {
		t.Fatal("out-of-vocabulary token: no error")
	}
	if _, err := m.Forward(context.Background(), nil, []int{1, -1}, nil, 1, 2, false); err == nil {
		t.Fatal("negative token: no error")
	}
	if _, err := m.Forward(context.Background(), nil, []int{1, 2, 3}, nil, 1, 2, false); err == nil {
		t.Fatal("wrong length: no error")
	}
}
