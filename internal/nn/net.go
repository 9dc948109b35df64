// Package nn is Gantry's training math: the forward and backward pass of a
// Llama-family model under LoRA, T-Few (IA)³ and Vanilla fine-tuning, and
// the AdamW optimiser. Layer functions are written once, generically over
// float32 and float64, so the float64 gradient checks test the same code
// that trains.
package nn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/tensor"
)

// Method is a fine-tuning method.
type Method string

// The fine-tuning methods.
const (
	LoRA    Method = "lora"    // low-rank adapters on chosen projections
	TFew    Method = "tfew"    // (IA)³ vectors on k_proj, v_proj outputs and the down_proj input
	Vanilla Method = "vanilla" // every weight of the last layers and the final norm
)

// DefaultLoRATargets are the projections LoRA adapts when
// Options.LoRATargets is empty.
var DefaultLoRATargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// Errors callers can branch on.
var (
	ErrOptions = errors.New("nn: invalid options")
	ErrBatch   = errors.New("nn: invalid batch")
	ErrWeights = errors.New("nn: weights do not match the config")
)

// Options choose the method and its hyperparameters. The zero value is not
// usable: Method is required, and LoRA needs LoRARank.
type Options struct {
	Method        Method
	LoRARank      int      // r
	LoRAAlpha     float64  // scale = alpha / r
	LoRADropout   float64  // dropout on the adapter input, training only; in [0, 1)
	LoRATargets   []string // default DefaultLoRATargets
	NumLastLayers int      // vanilla: train the last N layers and the final norm; 0 means all layers
	Seed          uint64   // adapter init and dropout RNG
	Threads       int      // goroutines for attention tiles; 0 means GOMAXPROCS (matrix products and elementwise layers always use GOMAXPROCS)
	// Precision of the frozen weights: "" or FP32 (exact), or BF16
	// (float32 networks only; see BF16).
	Precision Precision
	// ReleaseFrozen hands the frozen float32 tensors of the weights passed
	// to New over to the network: a float32 network sets each frozen
	// projection, and the embedding and LM head when it keeps them
	// converted or packed, to nil in those weights as soon as it holds its
	// own form of them, and has the garbage collector reclaim them layer
	// by layer, so that the float32 weights and their packed or bfloat16
	// copies never all take memory at once. Trainable tensors, norms and
	// biases stay in the weights (Vanilla updates them in place).
	ReleaseFrozen bool
}

// ParamOf is one trainable tensor with its gradient. Name is the tensor
// name in the output format: PEFT names for adapters (e.g.
// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight",
// "...k_proj.ia3_l"), Hugging Face names for vanilla (e.g.
// "model.layers.29.mlp.up_proj.weight", "model.norm.weight"). For vanilla
// Data is the model's own weight memory, so optimiser steps update the
// weights passed to New in place.
type ParamOf[F Float] struct {
	Name  string
	Shape []int
	Data  []F
	Grad  []F
}

// Param is a float32 trainable tensor, as Net uses.
type Param = ParamOf[float32]

// Batch is B right-padded sequences of T tokens, row-major [B, T].
// Targets[i] is the token id to predict at position i, or −1 for no loss.
// Lengths[b] is the number of real tokens of sequence b (nil: all T);
// positions at or past a sequence's length must have target −1.
type Batch struct {
	B, T    int
	Tokens  []int32
	Targets []int32
	Lengths []int
}

// Linear indices within a block, in Hugging Face order.
const (
	linQ = iota
	linK
	linV
	linO
	linGate
	linUp
	linDown
	numLinear
)

var linearNames = [numLinear]string{
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
}

var linearShort = [numLinear]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// adaptedLinear is one projection with whatever the method attaches to it.
type adaptedLinear[F Float] struct {
	w, b    []F
	wh      []uint16             // bf16 copy of a frozen w (then w is nil)
	wp      *tensor.PackedMatrix // a frozen w or wh packed once (then both are nil)
	in, out int
	dw, db  []F         // vanilla gradients; nil when frozen
	loraA   *ParamOf[F] // [r, in]
	loraB   *ParamOf[F] // [out, r]
	ia3     *ParamOf[F] // [out] scaling the output (k, v) or [in] scaling the input (down)
	ia3In   bool        // ia3 scales the input
}

type block[F Float] struct {
	inNorm, postNorm   []F
	dInNorm, dPostNorm []F // vanilla only
	lin                [numLinear]adaptedLinear[F]
}

// acts are the activations one layer saves for its backward. Rows are the
// B·T positions; widths: hIn, h2 C; q, att H·D; k, v, k0, v0 KV·D; g, u
// intermediate; rstd1, rstd2 one per row; lse [B, H, T]; lora[i] [N, r].
type acts[F Float] struct {
	hIn, rstd1, q, k, v, k0, v0, att, lse, h2, rstd2, g, u []F
	lora                                                   [numLinear][]F
	mask                                                   [numLinear][]uint64 // LoRA dropout keep-bits
}

// NetOf is a model prepared for training under one method, with its
// trainable parameters and preallocated activations. It is not safe for
// concurrent use.
type NetOf[F Float] struct {
	opt                  Options
	eps                  float64
	C, I, H, KV, D, V, L int
	r                    int
	loraScale            F
	embed, norm, lmHead  []F
	embedH, lmHeadH      []uint16             // BF16: the frozen embedding and LM head (then embed and lmHead are nil)
	embedP, lmHeadP      *tensor.PackedMatrix // the frozen embedding and LM head packed once (then the above are nil)
	dNorm                []F
	blocks               []block[F]
	params               []*ParamOf[F]
	invFreq              []float64
	lowest               int // lowest layer the backward reaches
	headBudget           int // logits of one LM-head block (netHeadBudget, lmHeadBudget for FullOf)
	window               int // sliding attention window, 0 for none
	seed, step           uint64
	// Buffers for the current batch shape (N = B·T rows), grown on demand:
	bB, bT                 int       // shape the buffers are sized for
	cos, sin               []F       // RoPE tables [T, D/2]
	saved                  []acts[F] // per layer the backward reaches
	tmp                    acts[F]   // for layers forward-only (vanilla below lowest, Evaluate); in arena
	hFinal, xf, rstdF      []F       // last block output and final norm [N, C] (its loss-bearing rows gathered to the front), rstd [N]
	xn, o, act, z          []F       // in arena from here to logits: normed input, projection output [N, C]; SwiGLU out, (IA)³-scaled [N, I]
	dh, dxn, datt          []F       // ∂residual, ∂normed input [N, C]; ∂attention output [N, H·D]
	dq, dk, dv, dz, dg, du []F       // ∂q [N, H·D]; ∂k, ∂v [N, KV·D]; ∂down input, ∂gate/σ(gate), ∂up [N, I]
	dzb, drop, dtmp, ldu   []F       // (IA)³ scratch [N, I]; dropout input and its gradient [N, max in]; LoRA ∂u [N, r]
	ldbT                   []F       // LoRA ∂Bᵀ scratch [r, max out]
	attnScratch            []F       // attention tiles per goroutine
	logits                 []F       // LM-head block [rows, V]
	arena                  []F       // holds tmp and xn … logits, phase by phase (see ensure)
	dxc                    []F       // gradient of the loss-bearing rows [M, C]
	tg                     []int32   // targets of the loss-bearing rows
	rowIdx                 []int     // their row in the batch
}

// Net is the float32 network the trainer runs.
type Net = NetOf[float32]

// New prepares w for training under opt with float32 arithmetic. The
// weights are used in place (vanilla updates them through Params).
func New(cfg *model.Config, w *model.Weights, opt Options) (*Net, error) {
	return NewOf[float32](cfg, w, opt)
}

// fromF32 returns x as []F: x itself when F is float32, else a converted copy.
func fromF32[F Float](x []float32) []F {
	if x == nil {
		return nil
	}
	if v, ok := any(x).([]F); ok {
		return v
	}
	out := make([]F, len(x))
	for i, v := range x {
		out[i] = F(v)
	}
	return out
}

// NewOf is New for either element type; float64 is for gradient checks
// (weights are copied then).
func NewOf[F Float](cfg *model.Config, w *model.Weights, opt Options) (*NetOf[F], error) {
	if cfg == nil || w == nil {
		return nil, fmt.Errorf("%w: nil config or weights", ErrOptions)
	}
	n := &NetOf[F]{
		opt: opt, eps: cfg.RMSNormEps,
		C: cfg.HiddenSize, I: cfg.IntermediateSize, H: cfg.NumAttentionHeads, KV: cfg.NumKeyValueHeads,
		D: cfg.Dim(), V: cfg.VocabSize, L: cfg.NumHiddenLayers,
		seed: opt.Seed, window: cfg.Window(), headBudget: netHeadBudget,
	}
	if n.KV == 0 {
		n.KV = n.H
	}
	switch {
	case n.C <= 0 || n.I <= 0 || n.H <= 0 || n.V <= 0 || n.L <= 0 || n.D <= 0:
		return nil, fmt.Errorf("%w: non-positive size in config (hidden %d, intermediate %d, heads %d, vocab %d, layers %d, head dim %d)", ErrWeights, n.C, n.I, n.H, n.V, n.L, n.D)
	case n.H%n.KV != 0:
		return nil, fmt.Errorf("%w: %d attention heads not a multiple of %d key/value heads", ErrWeights, n.H, n.KV)
	case n.D%2 != 0:
		return nil, fmt.Errorf("%w: odd head dimension %d", ErrWeights, n.D)
	case cfg.HiddenAct != "" && cfg.HiddenAct != "silu" && cfg.HiddenAct != "swish":
		return nil, fmt.Errorf("%w: hidden_act %q (only silu is supported)", ErrWeights, cfg.HiddenAct)
	case len(w.Layers) != n.L:
		return nil, fmt.Errorf("%w: %d layers, config says %d", ErrWeights, len(w.Layers), n.L)
	}
	lm := w.LMHead
	if lm == nil {
		lm = w.Embed
	}
	if err := checkLen("embed", len(w.Embed), n.V*n.C); err != nil {
		return nil, err
	}
	if err := checkLen("lm_head", len(lm), n.V*n.C); err != nil {
		return nil, err
	}
	if err := checkLen("norm", len(w.Norm), n.C); err != nil {
		return nil, err
	}
	n.embed, n.norm = fromF32[F](w.Embed), fromF32[F](w.Norm)
	if len(w.LMHead) > 0 && &w.LMHead[0] != &w.Embed[0] {
		n.lmHead = fromF32[F](lm)
	} else {
		n.lmHead = n.embed
	}
	HD, KVD := n.H*n.D, n.KV*n.D
	n.blocks = make([]block[F], n.L)
	for l := range w.Layers {
		src := &w.Layers[l]
		bl := &n.blocks[l]
		if err := checkLen(fmt.Sprintf("layer %d input norm", l), len(src.InputNorm), n.C); err != nil {
			return nil, err
		}
		if err := checkLen(fmt.Sprintf("layer %d post-attention norm", l), len(src.PostAttnNorm), n.C); err != nil {
			return nil, err
		}
		bl.inNorm, bl.postNorm = fromF32[F](src.InputNorm), fromF32[F](src.PostAttnNorm)
		shapes := [numLinear][2]int{{HD, n.C}, {KVD, n.C}, {KVD, n.C}, {n.C, HD}, {n.I, n.C}, {n.I, n.C}, {n.C, n.I}}
		lins := [numLinear]*model.Linear{&src.Q, &src.K, &src.V, &src.O, &src.Gate, &src.Up, &src.Down}
		for i, ln := range lins {
			out, in := shapes[i][0], shapes[i][1]
			name := fmt.Sprintf("layer %d %s", l, linearShort[i])
			if err := checkLen(name+" weight", len(ln.W), out*in); err != nil {
				return nil, err
			}
			if ln.B != nil {
				if err := checkLen(name+" bias", len(ln.B), out); err != nil {
					return nil, err
				}
			}
			bl.lin[i] = adaptedLinear[F]{w: fromF32[F](ln.W), b: fromF32[F](ln.B), in: in, out: out}
		}
	}
	for _, f := range model.RopeInvFreq(cfg) {
		n.invFreq = append(n.invFreq, float64(f))
	}
	if err := n.attach(); err != nil {
		return nil, err
	}
	var rel *model.Weights // the weights whose frozen tensors are released
	if opt.ReleaseFrozen && is32[F]() {
		rel = w
	}
	switch opt.Precision {
	case "", FP32:
	case BF16:
		if err := n.useBF16(rel); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: precision %q (want fp32 or bf16)", ErrOptions, opt.Precision)
	}
	n.packFrozen(rel)
	return n, nil
}

func checkLen(what string, got, want int) error {
	if got != want {
		return fmt.Errorf("%w: %s has %d values, want %d", ErrWeights, what, got, want)
	}
	return nil
}

// attach creates the method's parameters.
func (n *NetOf[F]) attach() error {
	opt := &n.opt
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6c6f7261696e6974))
	newParam := func(name string, shape []int, data []F) *ParamOf[F] {
		p := &ParamOf[F]{Name: name, Shape: shape, Data: data, Grad: make([]F, len(data))}
		n.params = append(n.params, p)
		return p
	}
	switch opt.Method {
	case LoRA:
		if opt.LoRARank <= 0 {
			return fmt.Errorf("%w: LoRA rank %d", ErrOptions, opt.LoRARank)
		}
		if !(opt.LoRAAlpha > 0) || math.IsInf(opt.LoRAAlpha, 0) {
			return fmt.Errorf("%w: LoRA alpha %v must be positive", ErrOptions, opt.LoRAAlpha)
		}
		if !(opt.LoRADropout >= 0 && opt.LoRADropout < 1) {
			return fmt.Errorf("%w: LoRA dropout %v not in [0, 1)", ErrOptions, opt.LoRADropout)
		}
		n.r = opt.LoRARank
		n.loraScale = F(opt.LoRAAlpha / float64(opt.LoRARank))
		targets := opt.LoRATargets
		if len(targets) == 0 {
			targets = DefaultLoRATargets
		}
		var on [numLinear]bool
		for _, t := range targets {
			i := slices.Index(linearShort[:], t)
			if i < 0 {
				return fmt.Errorf("%w: unknown LoRA target %q (want one of %v)", ErrOptions, t, linearShort)
			}
			on[i] = true
		}
		for l := range n.blocks {
			for i := range n.blocks[l].lin {
				if !on[i] {
					continue
				}
				ln := &n.blocks[l].lin[i]
				pre := fmt.Sprintf("base_model.model.model.layers.%d.%s.", l, linearNames[i])
				a := make([]F, n.r*ln.in)
				// PEFT: nn.init.kaiming_uniform_(A, a=√5) gives U(−1/√in, 1/√in).
				bound := 1 / math.Sqrt(float64(ln.in))
				for j := range a {
					a[j] = F((2*rng.Float64() - 1) * bound)
				}
				ln.loraA = newParam(pre+"lora_A.weight", []int{n.r, ln.in}, a)
				ln.loraB = newParam(pre+"lora_B.weight", []int{ln.out, n.r}, make([]F, ln.out*n.r))
			}
		}
	case TFew:
		for l := range n.blocks {
			for _, i := range []int{linK, linV, linDown} {
				ln := &n.blocks[l].lin[i]
				name := fmt.Sprintf("base_model.model.model.layers.%d.%s.ia3_l", l, linearNames[i])
				size, shape := ln.out, []int{ln.out, 1}
				if i == linDown {
					size, shape = ln.in, []int{1, ln.in}
					ln.ia3In = true
				}
				ones := make([]F, size)
				for j := range ones {
					ones[j] = 1
				}
				ln.ia3 = newParam(name, shape, ones)
			}
		}
	case Vanilla:
		k := opt.NumLastLayers
		if k < 0 || k > n.L {
			return fmt.Errorf("%w: NumLastLayers %d not in [0, %d]", ErrOptions, k, n.L)
		}
		if k == 0 {
			k = n.L
		}
		n.lowest = n.L - k
		for l := n.lowest; l < n.L; l++ {
			bl := &n.blocks[l]
			pre := fmt.Sprintf("model.layers.%d.", l)
			p := newParam(pre+"input_layernorm.weight", []int{n.C}, bl.inNorm)
			bl.dInNorm = p.Grad
			for i := range bl.lin {
				ln := &bl.lin[i]
				if i == linGate {
					p := newParam(pre+"post_attention_layernorm.weight", []int{n.C}, bl.postNorm)
					bl.dPostNorm = p.Grad
				}
				ln.dw = newParam(pre+linearNames[i]+".weight", []int{ln.out, ln.in}, ln.w).Grad
				if ln.b != nil {
					ln.db = newParam(pre+linearNames[i]+".bias", []int{ln.out}, ln.b).Grad
				}
			}
		}
		n.dNorm = newParam("model.norm.weight", []int{n.C}, n.norm).Grad
	default:
		return fmt.Errorf("%w: unknown method %q (want lora, tfew or vanilla)", ErrOptions, opt.Method)
	}
	return nil
}

// Params returns the trainable parameters in a fixed order (layer by
// layer, Hugging Face module order; vanilla's final norm last).
func (n *NetOf[F]) Params() []*ParamOf[F] { return n.params }

// ZeroGrad sets every parameter gradient to zero.
func (n *NetOf[F]) ZeroGrad() {
	for _, p := range n.params {
		parallelChunks(len(p.Grad), 1<<16, func(i0, i1 int) { clear(p.Grad[i0:i1]) })
	}
}

// RNGState returns the dropout RNG state (16 bytes) for a checkpoint.
func (n *NetOf[F]) RNGState() []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, n.seed)
	binary.LittleEndian.PutUint64(b[8:], n.step)
	return b
}

// SetRNGState restores a state from RNGState, so the following steps draw
// the same dropout masks as the run that saved it.
func (n *NetOf[F]) SetRNGState(b []byte) error {
	if len(b) != 16 {
		return fmt.Errorf("%w: RNG state has %d bytes, want 16", ErrOptions, len(b))
	}
	n.seed = binary.LittleEndian.Uint64(b)
	n.step = binary.LittleEndian.Uint64(b[8:])
	return nil
}

// maxRows bounds B·T so a hostile batch cannot ask for unbounded memory.
const maxRows = 1 << 22

func (n *NetOf[F]) checkBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrBatch)
	}
	if b.B <= 0 || b.T <= 0 || b.B > maxRows || b.T > maxRows || b.B*b.T > maxRows {
		return fmt.Errorf("%w: shape %d×%d", ErrBatch, b.B, b.T)
	}
	N := b.B * b.T
	if len(b.Tokens) != N || len(b.Targets) != N {
		return fmt.Errorf("%w: %d tokens and %d targets for %d×%d", ErrBatch, len(b.Tokens), len(b.Targets), b.B, b.T)
	}
	if b.Lengths != nil && len(b.Lengths) != b.B {
		return fmt.Errorf("%w: %d lengths for %d sequences", ErrBatch, len(b.Lengths), b.B)
	}
	for s := 0; s < b.B; s++ {
		L := b.T
		if b.Lengths != nil {
			L = b.Lengths[s]
			if L < 0 || L > b.T {
				return fmt.Errorf("%w: sequence %d length %d not in [0, %d]", ErrBatch, s, L, b.T)
			}
		}
		for t := 0; t < b.T; t++ {
			i := s*b.T + t
			if tok := b.Tokens[i]; tok < 0 || int(tok) >= n.V {
				return fmt.Errorf("%w: token %d at sequence %d position %d outside vocabulary of %d", ErrBatch, tok, s, t, n.V)
			}
			tg := b.Targets[i]
			if tg < -1 || int(tg) >= n.V {
				return fmt.Errorf("%w: target %d at sequence %d position %d outside vocabulary of %d", ErrBatch, tg, s, t, n.V)
			}
			if t >= L && tg != -1 {
				return fmt.Errorf("%w: target %d at padded position %d of sequence %d (length %d)", ErrBatch, tg, t, s, L)
			}
		}
	}
	return nil
}

// lmHeadBudget is the number of logits (float elements) one LM-head block
// may hold: 128 MiB of float32. Larger blocks amortise packing the [V, C]
// head matrix over more rows; smaller ones save memory. FullOf keeps it:
// its head gradient sums over blocks, so the block size is part of its
// numerics.
const lmHeadBudget = 1 << 25

// netHeadBudget is lmHeadBudget for the fine-tuning networks, whose
// results do not depend on the block size: 96 MiB of float32, 512 rows of
// a 49152-token vocabulary. The logits block is the largest phase of the
// arena (see ensure); against 128 MiB, smollm2-135m's 2040 loss rows take
// 4 blocks instead of 3, 32 MiB less peak memory for ~1% more LM-head
// time (one more packing of the head per product).
const netHeadBudget = 3 << 23

// fit returns b resliced to n elements, reallocating only when its
// capacity is short. Contents are not preserved.
func fit[T any](b []T, n int) []T {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]T, n)
}

// ensure sizes the activation buffers for (B, T). Buffers only grow: a
// shape no larger than one seen before reuses the memory, so batches of
// varying length do not reallocate.
//
// A step has three phases that never overlap: the forward through the
// blocks, the LM head, and the backward through the blocks. Each phase's
// scratch lives in one arena at once: the per-layer scratch (normed input,
// projection output, SwiGLU output, attention tiles, …) and the
// activations of the layers no backward reaches (tmp) in the forward; the
// logits block in the LM head; the per-layer scratch again and the
// gradients of the activations (dh, dq, …) in the backward. The arena
// takes the largest phase instead of their sum. Only the activations the
// backward reads (saved), the final norm's input and output, and the
// LM-head rows and their gradient live across phases.
func (n *NetOf[F]) ensure(B, T int) {
	if n.bB == B && n.bT == T {
		return
	}
	n.bB, n.bT = B, T
	N := B * T
	C, I, HD, KVD := n.C, n.I, n.H*n.D, n.KV*n.D
	h := n.D / 2
	if len(n.cos) < T*h {
		n.cos, n.sin = make([]F, T*h), make([]F, T*h)
		RoPETable(n.cos, n.sin, n.invFreq, T)
	}
	// actsFor lays out one layer's activations with get: fit for saved,
	// the arena for tmp.
	actsFor := func(a *acts[F], l int, train bool, get func(b []F, k int) []F) {
		a.hIn, a.rstd1 = get(a.hIn, N*C), get(a.rstd1, N)
		a.q, a.k, a.v = get(a.q, N*HD), get(a.k, N*KVD), get(a.v, N*KVD)
		a.att, a.lse = get(a.att, N*HD), get(a.lse, B*n.H*T)
		a.h2, a.rstd2 = get(a.h2, N*C), get(a.rstd2, N)
		a.g, a.u = get(a.g, N*I), get(a.u, N*I)
		if n.opt.Method == TFew {
			a.k0, a.v0 = get(a.k0, N*KVD), get(a.v0, N*KVD)
		}
		for i, ln := range n.blocks[l].lin {
			if ln.loraA != nil {
				a.lora[i] = get(a.lora[i], N*n.r)
				if train && n.opt.LoRADropout > 0 {
					a.mask[i] = fit(a.mask[i], (N*ln.in+63)/64)
				}
			}
		}
	}
	if n.saved == nil {
		n.saved = make([]acts[F], n.L)
	}
	for l := n.lowest; l < n.L; l++ {
		actsFor(&n.saved[l], l, true, fit[F])
	}
	n.hFinal, n.xf, n.rstdF = fit(n.hFinal, N*C), fit(n.xf, N*C), fit(n.rstdF, N)
	n.dxc = fit(n.dxc, N*C)
	n.tg, n.rowIdx = fit(n.tg, N), fit(n.rowIdx, N)

	// The arena: first measure each phase (carve with a nil arena only
	// advances the offset), then grow it and lay the phases out.
	maxIn := max(C, I, HD)
	var off int
	carve := func(_ []F, k int) []F {
		o := off
		off += k
		if o+k > len(n.arena) {
			return nil
		}
		return n.arena[o : o+k : o+k]
	}
	headRows := min(N, LMHeadRows(n.V, n.headBudget))
	layout := func() int {
		off = 0
		// Per-layer scratch, forward and backward.
		n.xn, n.o, n.act = carve(nil, N*C), carve(nil, N*C), carve(nil, N*I)
		n.attnScratch = carve(nil, AttentionScratch(n.attnShape(nil)))
		n.z, n.drop, n.ldbT = nil, nil, nil
		if n.opt.Method == TFew { // the scaled down_proj input
			n.z = carve(nil, N*I)
		}
		if n.opt.Method == LoRA {
			n.ldbT = carve(nil, n.r*maxIn)
			if n.opt.LoRADropout > 0 {
				n.drop = carve(nil, N*maxIn)
			}
		}
		common := off
		// Forward: the forward-only layers' activations.
		actsFor(&n.tmp, 0, false, carve)
		end := off
		// Backward: the activation gradients.
		off = common
		n.dh, n.dxn, n.datt = carve(nil, N*C), carve(nil, N*C), carve(nil, N*HD)
		n.dq, n.dk, n.dv = carve(nil, N*HD), carve(nil, N*KVD), carve(nil, N*KVD)
		n.dz, n.dg, n.du = carve(nil, N*I), carve(nil, N*I), carve(nil, N*I)
		n.dzb, n.ldu, n.dtmp = nil, nil, nil
		if n.opt.Method == TFew { // the gradient of the scaled down_proj input
			n.dzb = carve(nil, N*I)
		}
		if n.opt.Method == LoRA {
			n.ldu = carve(nil, N*n.r)
			if n.opt.LoRADropout > 0 {
				n.dtmp = carve(nil, N*maxIn)
			}
		}
		end = max(end, off)
		// LM head: one block of logits.
		off = 0
		n.logits = carve(nil, headRows*n.V)
		return max(end, off)
	}
	n.arena = n.arena[:0]
	n.arena = fit(n.arena, layout())
	layout()
}

func (n *NetOf[F]) attnShape(lengths []int) AttentionShape {
	return AttentionShape{B: n.bB, T: n.bT, H: n.H, KV: n.KV, D: n.D, Lengths: lengths, Window: n.window, Threads: n.opt.Threads}
}

// dropKey is the dropout mask key of linear i in layer l at the current step.
func (n *NetOf[F]) dropKey(l, i int) uint64 {
	z := n.seed ^ 0xd1b54a32d192ed03
	z = z*0x9e3779b97f4a7c15 + n.step
	z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9
	return z + uint64(l*numLinear+i)*0x94d049bb133111eb
}

// linearForward computes y = the adapted projection i of layer l applied to x.
func (n *NetOf[F]) linearForward(l, i int, y, x []F, a *acts[F], train bool) {
	N := n.bB * n.bT
	ln := &n.blocks[l].lin[i]
	if ln.ia3 != nil && ln.ia3In {
		IA3Forward(n.z[:N*ln.in], x, ln.ia3.Data, N, ln.in)
		x = n.z[:N*ln.in]
	}
	if ln.ia3 != nil && !ln.ia3In {
		y0 := a.k0
		if i == linV {
			y0 = a.v0
		}
		linearForward(y0, x, ln.weight(), ln.b, N, ln.in, ln.out)
		IA3Forward(y, y0, ln.ia3.Data, N, ln.out)
	} else {
		linearForward(y, x, ln.weight(), ln.b, N, ln.in, ln.out)
	}
	if ln.loraA != nil {
		var mask []uint64
		var xd []F
		p := n.opt.LoRADropout
		if train && p > 0 {
			mask, xd = a.mask[i], n.drop[:N*ln.in]
			DropoutMask(mask, N*ln.in, p, n.dropKey(l, i))
		}
		LoRAForwardDropout(y, a.lora[i], x, mask, p, xd, n.ldbT, ln.loraA.Data, ln.loraB.Data, n.loraScale, N, ln.in, ln.out, n.r)
	}
}

// linearBackward accumulates the gradients of projection i of layer l given
// dy = ∂L/∂y (clobbered), its unscaled input x, and adds ∂L/∂x to dx when
// dx is not nil (writes it, with overwrite: dx need not be cleared first).
func (n *NetOf[F]) linearBackward(l, i int, dx, dy, x []F, a *acts[F], overwrite bool) {
	N := n.bB * n.bT
	ln := &n.blocks[l].lin[i]
	if ln.ia3 != nil && !ln.ia3In {
		y0 := a.k0
		if i == linV {
			y0 = a.v0
		}
		IA3Backward(dy, ln.ia3.Grad, dy, y0, ln.ia3.Data, N, ln.out)
	}
	xin, dxBase := x, dx
	if ln.ia3 != nil && ln.ia3In {
		xin = n.z[:N*ln.in]
		IA3Forward(xin, x, ln.ia3.Data, N, ln.in)
		dxBase = n.dzb[:N*ln.in]
		clear(dxBase)
	}
	beta := F(1) // dxBase += dy·W
	if overwrite && !(ln.ia3 != nil && ln.ia3In) {
		beta = 0 // dx = dy·W (dxBase is dx itself, not the (IA)³ scratch)
	}
	linearBackward(dxBase, ln.dw, ln.db, dy, xin, ln.weight(), N, ln.in, ln.out, beta)
	if ln.loraA != nil {
		var mask []uint64
		var xd, dtmp []F
		p := n.opt.LoRADropout
		if p > 0 {
			mask, xd, dtmp = a.mask[i], n.drop[:N*ln.in], n.dtmp[:N*ln.in]
		}
		LoRABackwardDropout(dxBase, ln.loraA.Grad, ln.loraB.Grad, n.ldu, n.ldbT, dy, xin, mask, p, xd, dtmp, a.lora[i], ln.loraA.Data, ln.loraB.Data, n.loraScale, N, ln.in, ln.out, n.r)
	}
	if ln.ia3 != nil && ln.ia3In {
		IA3Backward(dxBase, ln.ia3.Grad, dxBase, x, ln.ia3.Data, N, ln.in)
		if dx != nil && overwrite {
			copy(dx, dxBase)
		} else if dx != nil {
			for j, v := range dxBase {
				dx[j] += v
			}
		}
	}
}

// ia3Fused reports whether the projection is down_proj with only an input
// (IA)³ scale trained (frozen weight, no LoRA): its input scaling is then
// fused with the SwiGLU that produces the input (SwiGLUIA3Forward,
// SwiGLUIA3Backward).
func (ln *adaptedLinear[F]) ia3Fused() bool {
	return ln.ia3 != nil && ln.ia3In && ln.ia3.Grad != nil && ln.dw == nil && ln.loraA == nil
}

// weight returns the projection's weight as stored.
func (ln *adaptedLinear[F]) weight() matRef[F] { return matRef[F]{f: ln.w, h: ln.wh, p: ln.wp} }

// head returns the LM head as stored.
func (n *NetOf[F]) head() matRef[F] { return matRef[F]{f: n.lmHead, h: n.lmHeadH, p: n.lmHeadP} }

// layerForward runs block l on a.hIn and writes the block output to hOut
// (which may alias a.hIn), saving activations in a.
func (n *NetOf[F]) layerForward(l int, a *acts[F], hOut []F, lengths []int, train bool) {
	N, T := n.bB*n.bT, n.bT
	C, I := n.C, n.I
	bl := &n.blocks[l]
	xn := n.xn[:N*C]
	RMSNormForward(xn, a.rstd1, a.hIn, bl.inNorm, N, C, n.eps)
	n.linearForward(l, linQ, a.q, xn, a, train)
	n.linearForward(l, linK, a.k, xn, a, train)
	n.linearForward(l, linV, a.v, xn, a, train)
	RoPEForward(a.q, n.cos, n.sin, N, T, n.H, n.D)
	RoPEForward(a.k, n.cos, n.sin, N, T, n.KV, n.D)
	AttentionForward(a.att, a.lse, a.q, a.k, a.v, n.attnShape(lengths), n.attnScratch)
	n.linearForward(l, linO, n.o, a.att, a, train)
	ResidualRMSNormForward(a.h2, xn, a.rstd2, a.hIn, n.o, bl.postNorm, N, C, n.eps)
	n.linearForward(l, linGate, a.g, xn, a, train)
	n.linearForward(l, linUp, a.u, xn, a, train)
	if dn := &bl.lin[linDown]; dn.ia3Fused() {
		z := n.z[:N*I] // the scaled down_proj input, in one pass
		SwiGLUIA3Forward(z, a.g, a.u, dn.ia3.Data, N, I)
		linearForward(n.o, z, dn.weight(), dn.b, N, I, C)
	} else {
		SwiGLUForward(n.act[:N*I], nil, a.g, a.u)
		n.linearForward(l, linDown, n.o, n.act[:N*I], a, train)
	}
	ResidualForward(hOut, a.h2, n.o)
}

// layerBackward turns n.dh = ∂L/∂(block l output) into ∂L/∂(block input)
// when needInput, accumulating parameter gradients on the way.
func (n *NetOf[F]) layerBackward(l int, a *acts[F], lengths []int, needInput bool) {
	N, T := n.bB*n.bT, n.bT
	C, I := n.C, n.I
	bl := &n.blocks[l]
	xn, act := n.xn[:N*C], n.act[:N*I]
	// MLP: hOut = h2 + down(swiglu(gate(xn2), up(xn2))), xn2 = norm(h2).
	RMSNormRecompute(xn, a.rstd2, a.h2, bl.postNorm, N, C)
	dz := n.dz[:N*I]
	if dn := &bl.lin[linDown]; dn.ia3Fused() {
		// dz = ∂L/∂(scaled input), then dl and the SwiGLU gradients of
		// dz∘l in one pass (the SwiGLU output is recomputed there).
		linearBackward(dz, nil, dn.db, n.dh, nil, dn.weight(), N, I, C, 0)
		SwiGLUIA3Backward(n.dg, n.du, dn.ia3.Grad, dz, a.g, a.u, dn.ia3.Data, N, I)
	} else {
		SwiGLUForward(act, nil, a.g, a.u)                    // σ(gate) is recomputed by SwiGLUBackward
		n.linearBackward(l, linDown, dz, n.dh, act, a, true) // dy is clobbered only by output-scaling (IA)³
		SwiGLUBackward(n.dg, n.du, dz, a.g, a.u, nil)
	}
	n.linearBackward(l, linGate, n.dxn, n.dg, xn, a, true)
	n.linearBackward(l, linUp, n.dxn, n.du, xn, a, false)
	RMSNormBackward(n.dh, bl.dPostNorm, n.dxn, a.h2, a.rstd2, bl.postNorm, N, C)
	// Attention: h2 = hIn + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))).
	n.linearBackward(l, linO, n.datt, n.dh, a.att, a, true)
	AttentionBackward(n.dq, n.dk, n.dv, n.datt, a.q, a.k, a.v, a.att, a.lse, n.attnShape(lengths), n.attnScratch)
	RoPEBackward(n.dq, n.cos, n.sin, N, T, n.H, n.D)
	RoPEBackward(n.dk, n.cos, n.sin, N, T, n.KV, n.D)
	RMSNormRecompute(xn, a.rstd1, a.hIn, bl.inNorm, N, C)
	var dxn []F
	if needInput || bl.dInNorm != nil {
		dxn = n.dxn
	}
	n.linearBackward(l, linQ, dxn, n.dq, xn, a, true)
	n.linearBackward(l, linK, dxn, n.dk, xn, a, false)
	n.linearBackward(l, linV, dxn, n.dv, xn, a, false)
	if dxn != nil {
		var dh []F
		if needInput {
			dh = n.dh
		}
		RMSNormBackward(dh, bl.dInNorm, dxn, a.hIn, a.rstd1, bl.inNorm, N, C)
	}
}

// forward runs the embedding and every block, and the final norm into n.xf.
func (n *NetOf[F]) forward(ctx context.Context, b *Batch, train bool) error {
	N := b.B * b.T
	actsFor := func(l int) *acts[F] {
		if train && l >= n.lowest {
			return &n.saved[l]
		}
		return &n.tmp
	}
	if n.embed == nil {
		h := actsFor(0).hIn
		for i, t := range b.Tokens {
			matRef[F]{h: n.embedH, p: n.embedP}.rowInto(h[i*n.C:(i+1)*n.C], int(t), n.C)
		}
	} else {
		EmbeddingForward(actsFor(0).hIn, b.Tokens, n.embed, N, n.C)
	}
	for l := 0; l < n.L; l++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		out := n.hFinal
		if l+1 < n.L {
			out = actsFor(l + 1).hIn
		}
		n.layerForward(l, actsFor(l), out, b.Lengths, train)
	}
	RMSNormForward(n.xf, n.rstdF, n.hFinal, n.norm, N, n.C, n.eps)
	return nil
}

// gatherLossRows moves the rows of n.xf with a target to its front, in
// order (row M from row i ≥ M), and returns how many there are.
func (n *NetOf[F]) gatherLossRows(b *Batch) int {
	M := 0
	C := n.C
	for i, t := range b.Targets {
		if t < 0 {
			continue
		}
		if M != i {
			copy(n.xf[M*C:(M+1)*C], n.xf[i*C:(i+1)*C])
		}
		n.tg[M], n.rowIdx[M] = t, i
		M++
	}
	return M
}

// ForwardBackward runs the batch with dropout on and adds
// scale·∂(sum of token losses)/∂p to every Param.Grad. It returns the summed
// loss and the number of loss-bearing tokens. Each call advances the
// dropout RNG by one step.
func (n *NetOf[F]) ForwardBackward(ctx context.Context, b *Batch, scale float32) (lossSum float64, tokens int, err error) {
	if err := n.checkBatch(b); err != nil {
		return 0, 0, err
	}
	n.ensure(b.B, b.T)
	n.step++
	if err := n.forward(ctx, b, true); err != nil {
		return 0, 0, err
	}
	N, C := b.B*b.T, n.C
	M := n.gatherLossRows(b)
	if M == 0 {
		return 0, 0, nil // no loss-bearing token: every gradient is zero
	}
	loss, _ := lmHeadCrossEntropy(n.dxc, n.xf, n.head(), n.tg, M, C, n.V, F(scale), n.logits)
	clear(n.dxn)
	for r := 0; r < M; r++ {
		i := n.rowIdx[r]
		copy(n.dxn[i*C:(i+1)*C], n.dxc[r*C:(r+1)*C])
	}
	clear(n.dh)
	RMSNormBackward(n.dh, n.dNorm, n.dxn, n.hFinal, n.rstdF, n.norm, N, C)
	for l := n.L - 1; l >= n.lowest; l-- {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n.layerBackward(l, &n.saved[l], b.Lengths, l > n.lowest)
	}
	return loss, M, nil
}

// Evaluate runs the batch without dropout and without gradients. It returns
// the summed loss, the number of positions whose arg-max logit is the
// target, and the number of loss-bearing tokens.
func (n *NetOf[F]) Evaluate(ctx context.Context, b *Batch) (lossSum float64, correct, tokens int, err error) {
	if err := n.checkBatch(b); err != nil {
		return 0, 0, 0, err
	}
	n.ensure(b.B, b.T)
	if err := n.forward(ctx, b, false); err != nil {
		return 0, 0, 0, err
	}
	M := n.gatherLossRows(b)
	loss, correct := lmHeadCrossEntropy(nil, n.xf, n.head(), n.tg, M, n.C, n.V, 1, n.logits)
	return loss, correct, M, nil
}

// StepFLOPs is the number of floating-point operations one ForwardBackward
// on b needs under this method, counted as 2·m·n·k per matrix product of
// shapes m×k and k×n; elementwise work (norms, RoPE, softmax, SwiGLU) is
// not counted. Forward: every projection 2·N·in·out (N = B·T rows, padding
// included since it is computed), LoRA 2·N·r·(in+out), attention 2·D per
// (query, visible key) pair for q·kᵀ and again for P·v, the LM head
// 2·M·V·C (M loss-bearing rows). Backward: the LM head input gradient
// 2·M·V·C; in each block the backward reaches, 2·N·in·out per projection
// input gradient that is needed, the same again per vanilla weight
// gradient, four LoRA products, and four attention products (dP, dq, dk,
// dv; the recomputed scores are not counted as needed work).
func (n *NetOf[F]) StepFLOPs(b *Batch) float64 {
	N := float64(b.B * b.T)
	var pairs float64 // causal (query, key) pairs over the batch, per head
	for s := 0; s < b.B; s++ {
		L := b.T
		if b.Lengths != nil {
			L = b.Lengths[s]
		}
		for t := 0; t < L; t++ {
			if n.window > 0 {
				pairs += float64(min(t+1, n.window))
			} else {
				pairs += float64(t + 1)
			}
		}
	}
	M := 0
	for _, t := range b.Targets {
		if t >= 0 {
			M++
		}
	}
	attn := 2 * float64(n.D) * pairs * float64(n.H) // one product over all heads
	r := float64(n.r)
	var f float64
	for l := 0; l < n.L; l++ {
		bl := &n.blocks[l]
		back := l >= n.lowest
		f += 2 * attn
		if back {
			f += 4 * attn
		}
		for i := range bl.lin {
			ln := &bl.lin[i]
			mm := 2 * N * float64(ln.in) * float64(ln.out)
			f += mm
			needDX := back && (l > n.lowest || bl.dInNorm != nil || i > linV)
			if needDX {
				f += mm
			}
			if ln.dw != nil {
				f += mm
			}
			if ln.loraA != nil {
				f += 2 * N * r * float64(ln.in+ln.out)
				if back {
					f += 2*N*r*float64(ln.out)*2 + 2*N*r*float64(ln.in)
					if needDX {
						f += 2 * N * r * float64(ln.in)
					}
				}
			}
		}
	}
	f += 2 * 2 * float64(M) * float64(n.V) * float64(n.C)
	return f
}
