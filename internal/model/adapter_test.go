package model_test

// The adapters of `gantry generate --adapter` are merged into the weights
// by internal/peft; this checks the merged model against the PyTorch
// reference applying the same adapter unmerged, as PEFT does.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	. "github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/peft"
	"github.com/gantryml/gantry/internal/safetensors"
)

func randTensor(r *rand.Rand, name string, base, scale float32, shape ...int) peft.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = base + scale*float32(r.NormFloat64())
	}
	return peft.Tensor{Name: name, Shape: shape, Data: v}
}

func TestAdapterParity(t *testing.T) {
	RequireTorch(t)
	r := rand.New(rand.NewPCG(5, 6))
	const C, I, kv, rank = 64, 128, 32, 4
	pre := func(l int, mod string) string { return fmt.Sprintf("base_model.model.model.layers.%d.%s", l, mod) }
	var lora, ia3 []peft.Tensor
	for l := 0; l < 2; l++ {
		for _, m := range []struct {
			name    string
			out, in int
		}{{"self_attn.q_proj", C, C}, {"self_attn.v_proj", kv, C}, {"mlp.down_proj", C, I}} {
			lora = append(lora, randTensor(r, pre(l, m.name)+".lora_A.weight", 0, 0.1, rank, m.in),
				randTensor(r, pre(l, m.name)+".lora_B.weight", 0, 0.1, m.out, rank))
		}
		ia3 = append(ia3, randTensor(r, pre(l, "self_attn.k_proj.ia3_l"), 1, 0.3, kv, 1),
			randTensor(r, pre(l, "self_attn.v_proj.ia3_l"), 1, 0.3, kv, 1),
			randTensor(r, pre(l, "mlp.down_proj.ia3_l"), 1, 0.3, 1, I))
	}
	vanilla := []peft.Tensor{
		randTensor(r, "model.layers.1.mlp.up_proj.weight", 0, 0.05, I, C),
		randTensor(r, "model.layers.1.self_attn.k_proj.bias", 0, 0.1, kv),
		randTensor(r, "model.norm.weight", 1, 0.2, C),
	}
	adapters := map[string]*peft.Adapter{
		"lora":    peft.NewLoRA("tiny-qwen2", rank, 16, 0, []string{"q_proj", "v_proj", "down_proj"}, lora),
		"ia3":     peft.NewIA3("tiny-qwen2", ia3),
		"vanilla": peft.NewVanilla("tiny-qwen2", 1, []int{1}, vanilla),
	}
	for name, a := range adapters {
		t.Run(name, func(t *testing.T) {
			m, dir := NewTestModel(t, "tiny-qwen2", safetensors.F32, nil)
			adir := t.TempDir()
			if err := a.Save(adir); err != nil {
				t.Fatal(err)
			}
			loaded, err := peft.Load(adir)
			if err != nil {
				t.Fatal(err)
			}
			ids := RandomIDs(r, 10, m.Config.VocabSize)
			before, err := m.Forward(context.Background(), nil, ids, nil, 1, len(ids), false)
			if err != nil {
				t.Fatal(err)
			}
			if err := loaded.Merge(&m.Config, &m.Weights); err != nil {
				t.Fatal(err)
			}
			got, err := m.Forward(context.Background(), nil, ids, nil, 1, len(ids), false)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := TorchForward(t, dir, [][]int{ids}, nil, m.Config.VocabSize, "--adapter", adir)
			CompareLogits(t, name+" merged vs torch", got, want, 1e-4)
			same := true
			for i := range got {
				if got[i] != before[i] {
					same = false
					break
				}
			}
			if same {
				t.Fatal("the adapter changed nothing")
			}
		})
	}
}
