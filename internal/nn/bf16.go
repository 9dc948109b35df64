package nn

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/tensor"
)

// Precision is how a network stores its frozen weights and multiplies
// with them. Trainable parameters, gradients, activations and optimiser
// state are float32 under every precision.
type Precision string

// The precisions.
const (
	// FP32 keeps every weight in float32: exact, the default (also "").
	FP32 Precision = "fp32"
	// BF16 stores the frozen weights (frozen projections, the embedding
	// and the LM head) as bfloat16, half the memory of float32, packed
	// once as tensor.PackedMatrix, and multiplies with them as
	// tensor.SgemmBF16 does: the other operand is rounded to bfloat16 as
	// it is packed, products are exact and sums accumulate in float32
	// (on AMX tiles on Intel Sapphire Rapids and later, with VDPBF16PS on
	// AMD Zen 4 and later; GANTRY_BF16 overrides).
	BF16 Precision = "bf16"
)

// ParsePrecision parses "fp32" or "bf16" (any case); "" means FP32.
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "fp32", "float32":
		return FP32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	}
	return "", fmt.Errorf("%w: precision %q (want fp32 or bf16)", ErrOptions, s)
}

// matRef is a weight matrix W [rows, cols] row-major, held as F (f), as
// bfloat16 (h, float32 networks only), or packed once for both products
// (p, float32 networks: see packFrozen). Exactly one is set.
type matRef[F Float] struct {
	f []F
	h []uint16
	p *tensor.PackedMatrix
}

// mulNT computes c = alpha·a·Wᵀ + beta·c: a [m, k] (lda), W [n, k], c [m, n] (ldc).
func (w matRef[F]) mulNT(m, n, k int, alpha F, a []F, lda int, beta F, c []F, ldc int) {
	if w.f != nil {
		gemm(false, true, m, n, k, alpha, a, lda, w.f, k, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	if w.p != nil {
		w.p.MulNT(tensor.Default(), m, float32(alpha), as32(a), lda, float32(beta), as32(c), ldc)
		return
	}
	tensor.SgemmBF16(false, true, m, n, k, float32(alpha), as32(a), lda, w.h, k, float32(beta), as32(c), ldc)
}

// mulNN computes c = alpha·a·W + beta·c: a [m, k] (lda), W [k, n], c [m, n] (ldc).
func (w matRef[F]) mulNN(m, n, k int, alpha F, a []F, lda int, beta F, c []F, ldc int) {
	if w.f != nil {
		gemm(false, false, m, n, k, alpha, a, lda, w.f, n, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	if w.p != nil {
		w.p.MulNN(tensor.Default(), m, float32(alpha), as32(a), lda, float32(beta), as32(c), ldc)
		return
	}
	tensor.SgemmBF16(false, false, m, n, k, float32(alpha), as32(a), lda, w.h, n, float32(beta), as32(c), ldc)
}

// rowInto copies row i of W [·, cols] into dst [cols], widened to F.
func (w matRef[F]) rowInto(dst []F, i, cols int) {
	switch {
	case w.f != nil:
		copy(dst, w.f[i*cols:(i+1)*cols])
	case w.p != nil:
		w.p.Row(as32(dst), i)
	default:
		tensor.FromBF16Slice(as32(dst), w.h[i*cols:(i+1)*cols])
	}
}

// toBF16 rounds x to bfloat16 in parallel chunks.
func toBF16(x []float32) []uint16 {
	h := make([]uint16, len(x))
	parallelChunks(len(x), 1<<16, func(i0, i1 int) { tensor.ToBF16Slice(h[i0:i1], x[i0:i1]) })
	return h
}

// useBF16 converts the frozen weights to bfloat16 and drops the network's
// references to their float32 memory, and rel's when rel is not nil (see
// Options.ReleaseFrozen); otherwise the caller's model.Weights still hold
// them.
func (n *NetOf[F]) useBF16(rel *model.Weights) error {
	if !is32[F]() {
		return fmt.Errorf("%w: bf16 precision needs a float32 network", ErrOptions)
	}
	for l := range n.blocks {
		for i := range n.blocks[l].lin {
			ln := &n.blocks[l].lin[i]
			if ln.dw != nil {
				continue // trainable: stays float32
			}
			ln.wh = toBF16(as32(ln.w))
			ln.w = nil
		}
		n.releaseLayer(rel, l)
	}
	tied := &n.lmHead[0] == &n.embed[0]
	n.embedH = toBF16(as32(n.embed))
	if tied {
		n.lmHeadH = n.embedH
	} else {
		n.lmHeadH = toBF16(as32(n.lmHead))
	}
	n.embed, n.lmHead = nil, nil
	releaseHead(rel)
	return nil
}

// releaseLayer sets the frozen projections of layer l to nil in rel (when
// not nil) and collects them: the network holds them in another form by
// then. Collecting layer by layer lets the next layer's packed or bf16
// copy reuse the memory instead of growing the heap by the whole model
// first (the collector's pacing would wait for the heap to double).
func (n *NetOf[F]) releaseLayer(rel *model.Weights, l int) {
	if rel == nil {
		return
	}
	ly := &rel.Layers[l]
	lins := [numLinear]*model.Linear{&ly.Q, &ly.K, &ly.V, &ly.O, &ly.Gate, &ly.Up, &ly.Down}
	for i, ln := range lins {
		if n.blocks[l].lin[i].dw == nil {
			ln.W = nil
		}
	}
	runtime.GC()
}

// releaseHead sets the embedding and the LM head to nil in rel (when not
// nil) and collects them.
func releaseHead(rel *model.Weights) {
	if rel == nil {
		return
	}
	rel.Embed, rel.LMHead = nil, nil
	runtime.GC()
}

// packFrozen packs every frozen weight of a float32 network once as a
// tensor.PackedMatrix (one layout for both products) and drops the network's
// references to its float32 or bf16 memory: the frozen projections, and
// the embedding and LM head unless they are trainable or may become so
// (fp32 Vanilla, which NewFull builds on). Products with packed weights
// are bit-identical to the unpacked ones; only the repeated packing of W
// on every product goes.
//
// When rel is not nil, packFrozen releases rel's frozen tensors as it
// packs them (see Options.ReleaseFrozen).
func (n *NetOf[F]) packFrozen(rel *model.Weights) {
	if !is32[F]() {
		return
	}
	cfg := tensor.Default()
	for l := range n.blocks {
		for i := range n.blocks[l].lin {
			ln := &n.blocks[l].lin[i]
			switch {
			case ln.dw != nil: // trainable
			case ln.wh != nil:
				ln.wp = cfg.PackMatrixBF16(ln.wh, ln.out, ln.in)
				ln.wh = nil
			case ln.w != nil:
				ln.wp = cfg.PackMatrix(as32(ln.w), ln.out, ln.in)
				ln.w = nil
			}
		}
		n.releaseLayer(rel, l) // BF16: collects the layer's bf16 copies
	}
	switch {
	case n.embedH != nil:
		tied := &n.lmHeadH[0] == &n.embedH[0]
		n.embedP = cfg.PackMatrixBF16(n.embedH, n.V, n.C)
		n.lmHeadP = n.embedP
		if !tied {
			n.lmHeadP = cfg.PackMatrixBF16(n.lmHeadH, n.V, n.C)
		}
		n.embedH, n.lmHeadH = nil, nil
	case n.opt.Method != Vanilla:
		tied := &n.lmHead[0] == &n.embed[0]
		n.embedP = cfg.PackMatrix(as32(n.embed), n.V, n.C)
		n.lmHeadP = n.embedP
		if !tied {
			n.lmHeadP = cfg.PackMatrix(as32(n.lmHead), n.V, n.C)
		}
		n.embed, n.lmHead = nil, nil
		releaseHead(rel)
	}
}
