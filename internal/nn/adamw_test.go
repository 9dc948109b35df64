package nn

import (
	"context"
	"math"
	"slices"
	"testing"
)

// TestAdamWMatchesFormula checks two steps against torch.optim.AdamW's
// update written out in float64.
func TestAdamWMatchesFormula(t *testing.T) {
	p := &Param{Name: "w", Shape: []int{3}, Data: []float32{1, -2, 0.5}, Grad: make([]float32, 3)}
	o := NewAdamW([]*Param{p})
	o.WeightDecay = 0.1
	want := []float64{1, -2, 0.5}
	m, v := make([]float64, 3), make([]float64, 3)
	grads := [][]float32{{0.3, -0.1, 2}, {-0.2, 0.4, 1}}
	lr := 0.01
	for step, g := range grads {
		copy(p.Grad, g)
		o.Step(lr)
		tt := float64(step + 1)
		for i := range want {
			want[i] *= 1 - lr*0.1
			m[i] = 0.9*m[i] + 0.1*float64(g[i])
			v[i] = 0.999*v[i] + 0.001*float64(g[i])*float64(g[i])
			mh := m[i] / (1 - math.Pow(0.9, tt))
			vh := v[i] / (1 - math.Pow(0.999, tt))
			want[i] -= lr * mh / (math.Sqrt(vh) + 1e-8)
		}
		for i := range want {
			if math.Abs(float64(p.Data[i])-want[i]) > 1e-6 {
				t.Errorf("step %d: p[%d] = %v, want %v", step+1, i, p.Data[i], want[i])
			}
		}
	}
	if o.Steps() != 2 {
		t.Errorf("Steps() = %d", o.Steps())
	}
}

// TestAdamWStateResume checks that a run resumed from exported optimiser
// and RNG state is bit-identical to an uninterrupted one.
func TestAdamWStateResume(t *testing.T) {
	ctx := context.Background()
	opt := Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 4, LoRADropout: 0.2, Seed: 3}
	b := tinyBatch()
	train := func(n *Net, o *AdamW, steps int) {
		for range steps {
			n.ZeroGrad()
			if _, _, err := n.ForwardBackward(ctx, b, 0.1); err != nil {
				t.Fatal(err)
			}
			ClipGradNorm(n.Params(), 1)
			o.Step(1e-2)
		}
	}
	cfg, w := tinyModel(false, true, 10)
	full, _ := New(cfg, w, opt)
	fo := NewAdamW(full.Params())
	train(full, fo, 4)

	cfg2, w2 := tinyModel(false, true, 10)
	first, _ := New(cfg2, w2, opt)
	o1 := NewAdamW(first.Params())
	train(first, o1, 2)
	state, err := o1.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rng := first.RNGState()
	cfg3, w3 := tinyModel(false, true, 10)
	resumed, _ := New(cfg3, w3, opt)
	for i, p := range resumed.Params() {
		copy(p.Data, first.Params()[i].Data)
	}
	if err := resumed.SetRNGState(rng); err != nil {
		t.Fatal(err)
	}
	o2 := NewAdamW(resumed.Params())
	if err := o2.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	train(resumed, o2, 2)
	for i, p := range resumed.Params() {
		if !slices.Equal(p.Data, full.Params()[i].Data) {
			t.Fatalf("%s differs after resume", p.Name)
		}
	}
	if err := o2.UnmarshalBinary(state[:len(state)-3]); err == nil {
		t.Error("truncated state accepted")
	}
	other := NewAdamW(full.Params()[:1])
	if err := other.UnmarshalBinary(state); err == nil {
		t.Error("state for a different parameter list accepted")
	}
}

func TestClipGradNorm(t *testing.T) {
	mk := func(g ...float32) *Param { return &Param{Grad: g, Data: make([]float32, len(g))} }
	ps := []*Param{mk(3, 0), mk(0, 4)} // norm 5
	if n := ClipGradNorm(ps, 10); n != 5 || ps[0].Grad[0] != 3 {
		t.Errorf("under the limit: norm %v, grad %v", n, ps[0].Grad)
	}
	if n := ClipGradNorm(ps, 1); n != 5 {
		t.Errorf("norm %v, want 5", n)
	}
	c := 1 / (5 + 1e-6)
	if math.Abs(float64(ps[0].Grad[0])-3*c) > 1e-7 || math.Abs(float64(ps[1].Grad[1])-4*c) > 1e-7 {
		t.Errorf("clipped grads %v %v, want scale %v", ps[0].Grad, ps[1].Grad, c)
	}
}

func TestStepFLOPs(t *testing.T) {
	cfg, w := tinyModel(false, true, 1)
	b := &Batch{B: 1, T: 2, Tokens: []int32{1, 2}, Targets: []int32{2, -1}}
	C, I, V, HD, KVD := 16.0, 24.0, 13.0, 16.0, 8.0
	N := 2.0
	proj := 2 * N * (HD*C + 2*KVD*C + C*HD + 2*I*C + C*I) // one pass of every projection in a layer
	attn := 2 * 4.0 * 3 * 4                               // 2·D·pairs·heads for one product; pairs = 1+2
	head := 2 * 1 * V * C                                 // one loss row
	n, _ := New(cfg, w, Options{Method: Vanilla, NumLastLayers: 1})
	// Forward of 2 layers, head forward and backward, backward of layer 1:
	// input gradients and weight gradients of every projection, 4 attention products.
	want := 2*(proj+2*attn) + 2*head + 2*proj + 4*attn
	if got := n.StepFLOPs(b); math.Abs(got-want) > 1e-6*want {
		t.Errorf("vanilla StepFLOPs %v, want %v", got, want)
	}
}
