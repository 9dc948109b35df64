package nn

import (
	"context"

	"github.com/gantryml/gantry/internal/model"
)

// FullOf is a network in which every weight trains: the token embedding,
// every block (norms, projections, biases), the final norm and the LM
// head (one parameter with the embedding when they are tied). It is what
// pretraining from scratch needs; the fine-tuning methods keep the
// embedding and the LM head frozen. It embeds a Vanilla NetOf over all
// layers and replaces its Params, ZeroGrad and ForwardBackward; Evaluate
// and the RNG state are the embedded network's. Weights are updated in
// place (float32), as under Vanilla.
type FullOf[F Float] struct {
	*NetOf[F]
	embed  *ParamOf[F] // "model.embed_tokens.weight" [V, C]
	lmHead *ParamOf[F] // "lm_head.weight" [V, C]; nil when tied to the embedding
	all    []*ParamOf[F]
}

// Full is the float32 FullOf the pretrainer runs.
type Full = FullOf[float32]

// NewFull prepares w for training every weight with float32 arithmetic.
// opt's Method and NumLastLayers are ignored; Seed and Threads are used.
func NewFull(cfg *model.Config, w *model.Weights, opt Options) (*Full, error) {
	return NewFullOf[float32](cfg, w, opt)
}

// NewFullOf is NewFull for either element type (float64 copies the
// weights, for gradient checks).
func NewFullOf[F Float](cfg *model.Config, w *model.Weights, opt Options) (*FullOf[F], error) {
	opt.Method, opt.NumLastLayers, opt.Precision = Vanilla, 0, FP32
	opt.LoRARank, opt.LoRADropout, opt.LoRATargets = 0, 0, nil
	n, err := NewOf[F](cfg, w, opt)
	if err != nil {
		return nil, err
	}
	n.headBudget = lmHeadBudget // the head gradient's sums depend on it
	f := &FullOf[F]{NetOf: n}
	f.embed = &ParamOf[F]{Name: "model.embed_tokens.weight", Shape: []int{n.V, n.C}, Data: n.embed, Grad: make([]F, len(n.embed))}
	f.all = append([]*ParamOf[F]{f.embed}, n.params...)
	if &n.lmHead[0] != &n.embed[0] {
		f.lmHead = &ParamOf[F]{Name: "lm_head.weight", Shape: []int{n.V, n.C}, Data: n.lmHead, Grad: make([]F, len(n.lmHead))}
		f.all = append(f.all, f.lmHead)
	}
	return f, nil
}

// Params returns every trainable tensor: the embedding first, then the
// Vanilla order (layer by layer, the final norm), then the LM head when
// it is not tied.
func (f *FullOf[F]) Params() []*ParamOf[F] { return f.all }

// ZeroGrad sets every parameter gradient to zero.
func (f *FullOf[F]) ZeroGrad() {
	for _, p := range f.all {
		clear(p.Grad)
	}
}

// ForwardBackward runs the batch and adds scale·∂(sum of token losses)/∂p
// to every Param.Grad, the embedding and LM head included. It returns the
// summed loss and the number of loss-bearing tokens.
func (f *FullOf[F]) ForwardBackward(ctx context.Context, b *Batch, scale float32) (lossSum float64, tokens int, err error) {
	n := f.NetOf
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
	dHead := f.embed.Grad
	if f.lmHead != nil {
		dHead = f.lmHead.Grad
	}
	loss := LMHeadCrossEntropyGrad(n.dxc, dHead, n.xf, n.lmHead, n.tg, M, C, n.V, F(scale), n.logits)
	clear(n.dxn)
	for r := 0; r < M; r++ {
		i := n.rowIdx[r]
		copy(n.dxn[i*C:(i+1)*C], n.dxc[r*C:(r+1)*C])
	}
	clear(n.dh)
	RMSNormBackward(n.dh, n.dNorm, n.dxn, n.hFinal, n.rstdF, n.norm, N, C)
	for l := n.L - 1; l >= 0; l-- {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n.layerBackward(l, &n.saved[l], b.Lengths, true)
	}
	// n.dh is now ∂L/∂(embedding output).
	EmbeddingBackward(f.embed.Grad, n.dh, b.Tokens, N, C)
	return loss, M, nil
}

// LMHeadCrossEntropyGrad is LMHeadCrossEntropy with the gradients of both
// inputs, block by block over rows:
//
//	dlogits = scale·(softmax(x·Wᵀ) − onehot(targets))   [rows, V] (in logits)
//	dx      = dlogits·W                                  [M, C], overwritten
//	dw     += dlogitsᵀ·x                                 [V, C], accumulated
//
// x [M, C]; w [V, C]; logits is scratch of rows·V elements (rows ≥ 1). It
// returns the summed loss (float64, in row order).
func LMHeadCrossEntropyGrad[F Float](dx, dw, x, w []F, targets []int32, M, C, V int, scale F, logits []F) float64 {
	rows := len(logits) / V
	rowLoss := make([]float64, rows)
	var loss float64
	for i0 := 0; i0 < M; i0 += rows {
		n := min(rows, M-i0)
		gemm(false, true, n, V, C, 1, x[i0*C:], C, w, C, 0, logits, V)
		parallelChunks(n, 1, func(r0, r1 int) {
			for r := r0; r < r1; r++ {
				rowLoss[r], _ = softmaxCrossEntropyRow(logits[r*V:(r+1)*V], int(targets[i0+r]), true, scale)
			}
		})
		for r := 0; r < n; r++ {
			loss += rowLoss[r]
		}
		gemm(false, false, n, C, V, 1, logits, V, w, C, 0, dx[i0*C:], C)
		gemm(true, false, V, C, n, 1, logits, V, x[i0*C:], C, 1, dw, C)
	}
	return loss
}
