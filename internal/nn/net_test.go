package nn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gantryml/gantry/internal/model"
)

// tinyModel returns a 2-layer GQA model (hidden 16, 4 heads of 4 over 2
// KV heads, vocab 13) with weights large enough that every path carries
// gradient.
func tinyModel(bias, tied bool, seed uint64) (*model.Config, *model.Weights) {
	cfg := &model.Config{
		ModelType: "llama", HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 13, MaxPositionEmbeddings: 64,
		RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: tied, AttentionBias: bias, HiddenAct: "silu",
	}
	w := RandomWeights(cfg, seed)
	scale := func(x []float32, s float32) {
		for i := range x {
			x[i] *= s
		}
	}
	scale(w.Embed, 50)
	if !tied {
		scale(w.LMHead, 50)
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, ln := range []*model.Linear{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down} {
			scale(ln.W, 12)
			scale(ln.B, 10)
		}
	}
	return cfg, w
}

func tinyBatch() *Batch {
	// Sequence 0 is full; sequence 1 has 4 real tokens and 3 of padding.
	return &Batch{
		B: 2, T: 7,
		Tokens:  []int32{1, 5, 7, 2, 12, 0, 3, 4, 4, 9, 11, 0, 0, 0},
		Targets: []int32{5, 7, 2, 12, 0, 3, -1, -1, 9, 11, 6, -1, -1, -1},
		Lengths: []int{7, 4},
	}
}

// perturbAdapters moves adapter parameters off their initial values (LoRA B
// starts at zero, which would make A's gradient vanish).
func perturbAdapters[F Float](n *NetOf[F], seed uint64) {
	r := rand.New(rand.NewPCG(seed, 9))
	for _, p := range n.Params() {
		for i := range p.Data {
			p.Data[i] += F(0.3 * r.NormFloat64())
		}
	}
}

func TestWholeModelGrad(t *testing.T) {
	type tc struct {
		name       string
		bias, tied bool
		opt        Options
	}
	var cases []tc
	for _, shape := range []struct {
		name       string
		bias, tied bool
	}{{"bias tied", true, true}, {"nobias untied", false, false}} {
		cases = append(cases,
			tc{"lora " + shape.name, shape.bias, shape.tied, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 4, Seed: 3}},
			tc{"lora dropout " + shape.name, shape.bias, shape.tied, Options{Method: LoRA, LoRARank: 3, LoRAAlpha: 3, LoRADropout: 0.3, LoRATargets: []string{"q_proj", "v_proj", "down_proj"}, Seed: 4}},
			tc{"tfew " + shape.name, shape.bias, shape.tied, Options{Method: TFew, Seed: 5}},
			tc{"vanilla last 1 " + shape.name, shape.bias, shape.tied, Options{Method: Vanilla, NumLastLayers: 1}},
			tc{"vanilla all " + shape.name, shape.bias, shape.tied, Options{Method: Vanilla}},
		)
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, w := tinyModel(c.bias, c.tied, 7)
			n, err := NewOf[float64](cfg, w, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if c.opt.Method != Vanilla {
				perturbAdapters(n, 1)
			}
			b := tinyBatch()
			state := n.RNGState()
			loss := func() float64 {
				if err := n.SetRNGState(state); err != nil {
					t.Fatal(err)
				}
				l, _, err := n.ForwardBackward(ctx, b, 1)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			n.ZeroGrad()
			l0 := loss()
			if l0 <= 0 || math.IsNaN(l0) {
				t.Fatalf("loss %v", l0)
			}
			grads := make([][]float64, len(n.Params()))
			for i, p := range n.Params() {
				grads[i] = slices.Clone(p.Grad)
				var norm float64
				for _, g := range p.Grad {
					norm += g * g
				}
				if norm == 0 {
					t.Errorf("%s: zero gradient", p.Name)
				}
			}
			for i, p := range n.Params() {
				gradCheck(t, p.Name, p.Data, grads[i], loss)
			}
		})
	}
}

func TestParamNames(t *testing.T) {
	cfg, w := tinyModel(true, true, 1)
	cases := []struct {
		opt   Options
		count int
		names []string
	}{
		{Options{Method: LoRA, LoRARank: 4, LoRAAlpha: 8}, 2 * 7 * 2, []string{
			"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
			"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
		}},
		{Options{Method: TFew}, 2 * 3, []string{
			"base_model.model.model.layers.0.self_attn.k_proj.ia3_l",
			"base_model.model.model.layers.1.mlp.down_proj.ia3_l",
		}},
		{Options{Method: Vanilla, NumLastLayers: 1}, 2 + 7 + 4 + 1, []string{ // Llama attention_bias: q, k, v and o biases
			"model.layers.1.input_layernorm.weight",
			"model.layers.1.self_attn.q_proj.bias",
			"model.layers.1.mlp.up_proj.weight",
			"model.norm.weight",
		}},
	}
	for _, c := range cases {
		n, err := New(cfg, w, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		shapes := map[string][]int{}
		for _, p := range n.Params() {
			names = append(names, p.Name)
			shapes[p.Name] = p.Shape
			size := 1
			for _, d := range p.Shape {
				size *= d
			}
			if size != len(p.Data) || len(p.Grad) != len(p.Data) {
				t.Errorf("%s: shape %v for %d values, %d grads", p.Name, p.Shape, len(p.Data), len(p.Grad))
			}
		}
		if len(names) != c.count {
			t.Errorf("%s: %d params, want %d", c.opt.Method, len(names), c.count)
		}
		for _, want := range c.names {
			if !slices.Contains(names, want) {
				t.Errorf("%s: no param %q in %v", c.opt.Method, want, names)
			}
		}
		switch c.opt.Method {
		case LoRA:
			if s := shapes["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"]; !slices.Equal(s, []int{4, 16}) {
				t.Errorf("k lora_A shape %v", s)
			}
			if s := shapes["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"]; !slices.Equal(s, []int{8, 4}) {
				t.Errorf("k lora_B shape %v", s)
			}
		case TFew:
			if s := shapes["base_model.model.model.layers.0.self_attn.v_proj.ia3_l"]; !slices.Equal(s, []int{8, 1}) {
				t.Errorf("v ia3 shape %v", s)
			}
			if s := shapes["base_model.model.model.layers.0.mlp.down_proj.ia3_l"]; !slices.Equal(s, []int{1, 24}) {
				t.Errorf("down ia3 shape %v", s)
			}
		}
	}
}

func TestLoRAInit(t *testing.T) {
	cfg, w := tinyModel(false, true, 1)
	n, err := New(cfg, w, Options{Method: LoRA, LoRARank: 4, LoRAAlpha: 8, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range n.Params() {
		if p.Shape[0] == 4 { // lora_A [r, in]
			bound := float32(1 / math.Sqrt(float64(p.Shape[1])))
			var mx float32
			for _, v := range p.Data {
				mx = max(mx, float32(math.Abs(float64(v))))
			}
			if mx > bound || mx < bound/2 {
				t.Errorf("%s: max |A| %v, want within (%v/2, %v]", p.Name, mx, bound, bound)
			}
		} else if slices.ContainsFunc(p.Data, func(v float32) bool { return v != 0 }) {
			t.Errorf("%s: lora_B not zero", p.Name)
		}
	}
	// Same seed, same init; different seed, different init.
	n2, _ := New(cfg, w, Options{Method: LoRA, LoRARank: 4, LoRAAlpha: 8, Seed: 9})
	n3, _ := New(cfg, w, Options{Method: LoRA, LoRARank: 4, LoRAAlpha: 8, Seed: 10})
	if !slices.Equal(n.Params()[0].Data, n2.Params()[0].Data) || slices.Equal(n.Params()[0].Data, n3.Params()[0].Data) {
		t.Error("LoRA init does not follow the seed")
	}
}

func TestDeterministicGradients(t *testing.T) {
	ctx := context.Background()
	for _, m := range []Method{LoRA, TFew, Vanilla} {
		t.Run(string(m), func(t *testing.T) {
			var ref [][]float32
			var refLoss float64
			for run, threads := range []int{1, 3, 3} {
				cfg, w := tinyModel(true, false, 2)
				n, err := New(cfg, w, Options{Method: m, LoRARank: 2, LoRAAlpha: 2, LoRADropout: 0.1, Seed: 1, Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				perturbAdapters(n, 2)
				loss, _, err := n.ForwardBackward(ctx, tinyBatch(), 0.25)
				if err != nil {
					t.Fatal(err)
				}
				var grads [][]float32
				for _, p := range n.Params() {
					grads = append(grads, slices.Clone(p.Grad))
				}
				if run == 0 {
					ref, refLoss = grads, loss
					continue
				}
				if loss != refLoss {
					t.Errorf("run %d: loss %v, first run %v", run, loss, refLoss)
				}
				for i := range grads {
					if !slices.Equal(grads[i], ref[i]) {
						t.Errorf("run %d (%d threads): gradient of %s differs", run, threads, n.Params()[i].Name)
					}
				}
			}
		})
	}
}

func TestPaddingDoesNotLeak(t *testing.T) {
	ctx := context.Background()
	cfg, w := tinyModel(true, true, 3)
	for _, m := range []Method{LoRA, TFew, Vanilla} {
		run := func(b *Batch) (float64, [][]float32) {
			cfg, w := tinyModel(true, true, 3)
			n, err := New(cfg, w, Options{Method: m, LoRARank: 2, LoRAAlpha: 2, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			perturbAdapters(n, 3)
			loss, _, err := n.ForwardBackward(ctx, b, 1)
			if err != nil {
				t.Fatal(err)
			}
			var g [][]float32
			for _, p := range n.Params() {
				g = append(g, slices.Clone(p.Grad))
			}
			return loss, g
		}
		b := tinyBatch()
		l1, g1 := run(b)
		b2 := tinyBatch()
		for t := 4; t < 7; t++ {
			b2.Tokens[7+t] = int32(t + 3) // different padding tokens
		}
		l2, g2 := run(b2)
		if l1 != l2 {
			t.Errorf("%s: padding tokens changed the loss: %v vs %v", m, l1, l2)
		}
		for i := range g1 {
			if !slices.Equal(g1[i], g2[i]) {
				t.Errorf("%s: padding tokens changed gradient %d", m, i)
			}
		}
		// The batch's loss is the sum of each sequence's loss alone.
		var sep float64
		for s := 0; s < 2; s++ {
			L := b.Lengths[s]
			one := &Batch{B: 1, T: L, Tokens: b.Tokens[s*7 : s*7+L], Targets: b.Targets[s*7 : s*7+L]}
			l, _ := run(one)
			sep += l
		}
		if math.Abs(sep-l1) > 1e-5*math.Abs(l1) {
			t.Errorf("%s: batch loss %v, sum of separate sequences %v", m, l1, sep)
		}
	}
	_ = cfg
	_ = w
}

func TestEvaluateMatchesForward(t *testing.T) {
	ctx := context.Background()
	cfg, w := tinyModel(false, true, 4)
	n, err := New(cfg, w, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 2})
	if err != nil {
		t.Fatal(err)
	}
	perturbAdapters(n, 4)
	b := tinyBatch()
	l1, tok1, err := n.ForwardBackward(ctx, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	l2, correct, tok2, err := n.Evaluate(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if l1 != l2 || tok1 != tok2 || tok1 != 9 {
		t.Errorf("ForwardBackward %v over %d tokens, Evaluate %v over %d, want 9 tokens", l1, tok1, l2, tok2)
	}
	if correct < 0 || correct > tok2 {
		t.Errorf("correct %d of %d", correct, tok2)
	}
	// float32 and float64 agree.
	n64, _ := NewOf[float64](cfg, w, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 2})
	for i, p := range n.Params() {
		for j, v := range p.Data {
			n64.Params()[i].Data[j] = float64(v)
		}
	}
	l3, c3, _, _ := n64.Evaluate(ctx, b)
	if math.Abs(l3-l2) > 1e-4*math.Abs(l3) || c3 != correct {
		t.Errorf("float32 loss %v (%d correct), float64 %v (%d correct)", l2, correct, l3, c3)
	}
}

func TestBadInput(t *testing.T) {
	cfg, w := tinyModel(false, true, 1)
	if _, err := New(cfg, w, Options{Method: "prefix"}); !errors.Is(err, ErrOptions) {
		t.Errorf("unknown method: %v", err)
	}
	if _, err := New(cfg, w, Options{Method: LoRA}); !errors.Is(err, ErrOptions) {
		t.Errorf("rank 0: %v", err)
	}
	if _, err := New(cfg, w, Options{Method: LoRA, LoRARank: 2}); !errors.Is(err, ErrOptions) {
		t.Errorf("alpha 0: %v", err)
	}
	if _, err := New(cfg, w, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 2, LoRADropout: 1}); !errors.Is(err, ErrOptions) {
		t.Errorf("dropout 1: %v", err)
	}
	if _, err := New(cfg, w, Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 2, LoRATargets: []string{"qproj"}}); !errors.Is(err, ErrOptions) {
		t.Errorf("bad target: %v", err)
	}
	if _, err := New(cfg, w, Options{Method: Vanilla, NumLastLayers: 3}); !errors.Is(err, ErrOptions) {
		t.Errorf("too many layers: %v", err)
	}
	gelu := *cfg
	gelu.HiddenAct = "gelu"
	if _, err := New(&gelu, w, Options{Method: TFew}); !errors.Is(err, ErrWeights) {
		t.Errorf("gelu: %v", err)
	}
	short := *w
	short.Layers = slices.Clone(w.Layers)
	short.Layers[1].Up.W = short.Layers[1].Up.W[:10]
	if _, err := New(cfg, &short, Options{Method: TFew}); !errors.Is(err, ErrWeights) {
		t.Errorf("short weight: %v", err)
	}
	n, _ := New(cfg, w, Options{Method: TFew})
	ctx := context.Background()
	bad := []*Batch{
		nil,
		{B: 1, T: 2, Tokens: []int32{1}, Targets: []int32{1, 1}},
		{B: 1, T: 2, Tokens: []int32{1, 13}, Targets: []int32{1, 1}},
		{B: 1, T: 2, Tokens: []int32{1, 2}, Targets: []int32{-2, 1}},
		{B: 1, T: 2, Tokens: []int32{1, 2}, Targets: []int32{1, 1}, Lengths: []int{1}},
		{B: 1, T: 2, Tokens: []int32{1, 2}, Targets: []int32{1, 1}, Lengths: []int{3}},
		{B: 1 << 30, T: 1 << 30},
	}
	for i, b := range bad {
		if _, _, err := n.ForwardBackward(ctx, b, 1); !errors.Is(err, ErrBatch) {
			t.Errorf("batch %d: %v", i, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := n.ForwardBackward(cctx, tinyBatch(), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestRNGStateResumes(t *testing.T) {
	ctx := context.Background()
	cfg, w := tinyModel(false, true, 5)
	opt := Options{Method: LoRA, LoRARank: 2, LoRAAlpha: 2, LoRADropout: 0.5, Seed: 11}
	n, _ := New(cfg, w, opt)
	perturbAdapters(n, 5)
	b := tinyBatch()
	n.ForwardBackward(ctx, b, 1)
	st := n.RNGState()
	l1, _, _ := n.ForwardBackward(ctx, b, 1)
	l2, _, _ := n.ForwardBackward(ctx, b, 1)
	if l1 == l2 {
		t.Error("dropout masks repeat from step to step")
	}
	if err := n.SetRNGState(st); err != nil {
		t.Fatal(err)
	}
	l3, _, _ := n.ForwardBackward(ctx, b, 1)
	if l3 != l1 {
		t.Errorf("after SetRNGState loss %v, want %v", l3, l1)
	}
	if err := n.SetRNGState([]byte{1}); err == nil {
		t.Error("short RNG state accepted")
	}
}

func TestVanillaUpdatesWeightsInPlace(t *testing.T) {
	ctx := context.Background()
	cfg, w := tinyModel(false, true, 6)
	before0 := slices.Clone(w.Layers[0].Q.W)
	before1 := slices.Clone(w.Layers[1].Q.W)
	n, _ := New(cfg, w, Options{Method: Vanilla, NumLastLayers: 1})
	n.ForwardBackward(ctx, tinyBatch(), 1)
	NewAdamW(n.Params()).Step(1e-2)
	if !slices.Equal(before0, w.Layers[0].Q.W) {
		t.Error("frozen layer 0 changed")
	}
	if slices.Equal(before1, w.Layers[1].Q.W) {
		t.Error("trained layer 1 did not change")
	}
}

func TestShapeChanges(t *testing.T) {
	ctx := context.Background()
	cfg, w := tinyModel(true, false, 8)
	small := &Batch{B: 1, T: 3, Tokens: []int32{1, 2, 3}, Targets: []int32{2, 3, 4}}
	fresh := func(b *Batch) float64 {
		n, _ := New(cfg, w, Options{Method: TFew})
		perturbAdapters(n, 8)
		l, _, err := n.ForwardBackward(ctx, b, 1)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	wantBig, wantSmall := fresh(tinyBatch()), fresh(small)
	n, _ := New(cfg, w, Options{Method: TFew})
	perturbAdapters(n, 8)
	for i, b := range []*Batch{tinyBatch(), small, tinyBatch(), small} {
		l, _, err := n.ForwardBackward(ctx, b, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := wantBig
		if b.T == 3 {
			want = wantSmall
		}
		if l != want {
			t.Errorf("batch %d (%d×%d): loss %v, fresh net %v", i, b.B, b.T, l, want)
		}
	}
}
