package nn

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gantryml/gantry/internal/tensor"
)

// attnBlock is the number of query rows handled per tile. A tile needs a
// [attnBlock, T] score buffer, so attention memory grows linearly with T.
const attnBlock = 64

// AttentionShape describes a batch for causal grouped-query attention:
// B right-padded sequences of T positions, H query heads of dimension D
// sharing KV key/value heads (query head h reads KV head h/(H/KV)).
// Lengths[b] is the number of real positions of sequence b (nil: all T);
// a query never attends past its own position, so padding after a
// sequence cannot affect its real positions, and padded query rows are
// written as zero.
type AttentionShape struct {
	B, T, H, KV, D int
	Lengths        []int
	Window         int // sliding window: query t sees keys s with t − s < Window; 0 means all s ≤ t
	Threads        int // goroutines; 0 means GOMAXPROCS
}

// keyStart is the first key position query t may attend to.
func (s *AttentionShape) keyStart(t int) int {
	if s.Window > 0 {
		return max(0, t-s.Window+1)
	}
	return 0
}

func (s *AttentionShape) length(b int) int {
	if s.Lengths == nil {
		return s.T
	}
	return s.Lengths[b]
}

func (s *AttentionShape) threads() int {
	if s.Threads > 0 {
		return s.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// workers is the goroutine count for a scratch of the given length: no
// more than it has room for (GOMAXPROCS may have grown since it was sized).
func (s *AttentionShape) workers(scratch int) int {
	return max(1, min(s.threads(), scratch/max(attnWorkSize(*s), 1)))
}

// AttentionScratch returns the scratch length AttentionForward and
// AttentionBackward need: per goroutine, two score tiles [g·attnBlock, T]
// and three head-stacked row tiles [g·attnBlock, D], g = H/KV.
func AttentionScratch(s AttentionShape) int {
	return s.threads() * attnWorkSize(s)
}

func attnWorkSize(s AttentionShape) int {
	g := s.H / max(s.KV, 1)
	return g * attnBlock * (2*s.T + 3*s.D)
}

// attnWork splits goroutine w's scratch into its tiles.
func attnWork[F Float](scratch []F, w int, s AttentionShape) (P, dP, Qs, Os, dQs []F) {
	g := s.H / max(s.KV, 1)
	ws := scratch[w*attnWorkSize(s) : (w+1)*attnWorkSize(s)]
	st, rt := g*attnBlock*s.T, g*attnBlock*s.D
	return ws[:st], ws[st : 2*st], ws[2*st : 2*st+rt], ws[2*st+rt : 2*st+2*rt], ws[2*st+2*rt : 2*st+3*rt]
}

// gatherHeads copies rows i0..i0+rows−1 of heads h0..h0+g−1 of x [·, H·D]
// (sequence offset base) into dst [g·rows, D], head-major, so the query
// heads sharing one KV head form one matrix; scatterHeads is the inverse.
func gatherHeads[F Float](dst, x []F, base, rows, g, h0, HD, D int) {
	for hh := 0; hh < g; hh++ {
		for r := 0; r < rows; r++ {
			o := base + r*HD + (h0+hh)*D
			copy(dst[(hh*rows+r)*D:(hh*rows+r+1)*D], x[o:o+D])
		}
	}
}

func scatterHeads[F Float](x, src []F, base, rows, g, h0, HD, D int) {
	for hh := 0; hh < g; hh++ {
		for r := 0; r < rows; r++ {
			o := base + r*HD + (h0+hh)*D
			copy(x[o:o+D], src[(hh*rows+r)*D:(hh*rows+r+1)*D])
		}
	}
}

// parallelFor runs f(item, worker) for item in [0, n) on up to threads
// goroutines. Items must write disjoint outputs; worker indexes a private
// scratch area. Which goroutine runs an item does not change its result.
func parallelFor(n, threads int, f func(item, worker int)) {
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		for i := 0; i < n; i++ {
			f(i, 0)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i, w)
			}
		}(w)
	}
	wg.Wait()
}

// AttentionForward computes causal softmax attention, out = softmax(q·kᵀ/√D)·v
// per sequence and head, tile by tile: query rows in blocks of attnBlock,
// each against keys 0..(block end) only (blocks above the diagonal are
// never computed), or with a sliding window only the keys some row of the
// block can see.
//
// q, out [B·T, H·D]; k, v [B·T, KV·D] (row b·T+t, head h at columns h·D..);
// lse [B, H, T] receives each row's log-sum-exp of scaled scores for the
// backward (0 for padded rows); scratch has AttentionScratch(s) elements.
// Work is split over (sequence, KV head) pairs; each pair's result is
// computed by one goroutine in a fixed order, so it is deterministic.
func AttentionForward[F Float](out, lse, q, k, v []F, s AttentionShape, scratch []F) {
	B, T, H, KV, D := s.B, s.T, s.H, s.KV, s.D
	g := H / KV
	HD, KVD := H*D, KV*D
	scale := F(1 / math.Sqrt(float64(D)))
	parallelFor(B*KV, s.workers(len(scratch)), func(item, w int) {
		b, kvh := item/KV, item%KV
		h0 := kvh * g
		L := s.length(b)
		P, _, Qs, Os, _ := attnWork(scratch, w, s)
		inv := make([]F, g*attnBlock) // each row's 1/Σ, applied to its output row
		for i0 := 0; i0 < L; i0 += attnBlock {
			i1 := min(i0+attnBlock, L)
			k0 := s.keyStart(i0) // keys k0..i1−1 cover every row of the tile
			rows, n := i1-i0, i1-k0
			M := g * rows // the group's heads stacked: row hh·rows + r is head h0+hh, position i0+r
			qo := (b*T + i0) * HD
			ko := (b*T+k0)*KVD + kvh*D
			gatherHeads(Qs, q, qo, rows, g, h0, HD, D)
			// P[M, n] = scale · Qs·K[k0:i1]ᵀ
			gemm1(false, true, M, n, D, scale, Qs, D, k[ko:], KVD, 0, P, n)
			for row := 0; row < M; row++ {
				hh, r := row/rows, row%rows
				t := i0 + r
				p := P[row*n : (row+1)*n]
				lo, hi := s.keyStart(t)-k0, t-k0+1 // the row's keys, within the tile
				m := rowMax(p[lo:hi])
				sum := expSub(p[lo:hi], m)
				inv[row] = F(1 / sum)
				clear(p[:lo])
				clear(p[hi:])
				lse[(b*H+h0+hh)*T+t] = m + F(math.Log(sum))
			}
			// Os = P·V with P unnormalised, then each row times its 1/Σ: D
			// multiplies per row instead of n.
			gemm1(false, false, M, D, n, 1, P, n, v[ko:], KVD, 0, Os, D)
			for row := 0; row < M; row++ {
				scaleRow(Os[row*D:(row+1)*D], inv[row])
			}
			scatterHeads(out, Os, qo, rows, g, h0, HD, D)
		}
		for h := h0; h < h0+g; h++ {
			for t := L; t < T; t++ {
				clear(out[(b*T+t)*HD+h*D : (b*T+t)*HD+(h+1)*D])
				lse[(b*H+h)*T+t] = 0
			}
		}
	})
}

// AttentionBackward computes dq, dk, dv (all overwritten) from dout, the
// forward's inputs, its output and its saved lse, recomputing each tile's
// probabilities P = exp(S − lse) instead of storing them:
// dP = dout·vᵀ, dS = P∘(dP − rowsum(dout∘out)), dq = dS·k/√D,
// dk = dSᵀ·q/√D, dv = Pᵀ·dout. Shapes as in AttentionForward.
func AttentionBackward[F Float](dq, dk, dv, dout, q, k, v, out, lse []F, s AttentionShape, scratch []F) {
	B, T, H, KV, D := s.B, s.T, s.H, s.KV, s.D
	g := H / KV
	HD, KVD := H*D, KV*D
	scale := F(1 / math.Sqrt(float64(D)))
	parallelFor(B*KV, s.workers(len(scratch)), func(item, w int) {
		b, kvh := item/KV, item%KV
		h0 := kvh * g
		L := s.length(b)
		P, dP, Qs, dOs, dQs := attnWork(scratch, w, s)
		ko := b*T*KVD + kvh*D
		for t := 0; t < T; t++ {
			clear(dk[ko+t*KVD : ko+t*KVD+D])
			clear(dv[ko+t*KVD : ko+t*KVD+D])
		}
		for i0 := 0; i0 < L; i0 += attnBlock {
			i1 := min(i0+attnBlock, L)
			k0 := s.keyStart(i0)
			rows, n := i1-i0, i1-k0
			M := g * rows
			qo := (b*T + i0) * HD
			kt := ko + k0*KVD
			gatherHeads(Qs, q, qo, rows, g, h0, HD, D)
			gatherHeads(dOs, dout, qo, rows, g, h0, HD, D)
			gemm1(false, true, M, n, D, scale, Qs, D, k[kt:], KVD, 0, P, n)
			gemm1(false, true, M, n, D, 1, dOs, D, v[kt:], KVD, 0, dP, n)
			for row := 0; row < M; row++ {
				hh, r := row/rows, row%rows
				t := i0 + r
				p, dp := P[row*n:(row+1)*n], dP[row*n:(row+1)*n]
				lo, hi := s.keyStart(t)-k0, t-k0+1
				l := lse[(b*H+h0+hh)*T+t]
				oo := qo + r*HD + (h0+hh)*D
				dsum := dot(out[oo:oo+D], dout[oo:oo+D])
				expSubGrad(p[lo:hi], dp[lo:hi], l, dsum)
				clear(p[:lo])
				clear(p[hi:])
				clear(dp[:lo])
				clear(dp[hi:])
			}
			// dq rows are owned by this tile; dk, dv accumulate over tiles.
			gemm1(false, false, M, D, n, scale, dP, n, k[kt:], KVD, 0, dQs, D)
			scatterHeads(dq, dQs, qo, rows, g, h0, HD, D)
			gemm1(true, false, n, D, M, scale, dP, n, Qs, D, 1, dk[kt:], KVD)
			gemm1(true, false, n, D, M, 1, P, n, dOs, D, 1, dv[kt:], KVD)
		}
		for h := h0; h < h0+g; h++ {
			for t := L; t < T; t++ {
				clear(dq[(b*T+t)*HD+h*D : (b*T+t)*HD+(h+1)*D])
			}
		}
	})
}

// rowMax returns the largest element of x (len(x) ≥ 1).
func rowMax[F Float](x []F) F {
	if is32[F]() {
		return F(tensor.Max(as32(x)))
	}
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// scaleRow sets x[i] *= a.
func scaleRow[F Float](x []F, a F) {
	if is32[F]() {
		tensor.Scale(float32(a), as32(x))
		return
	}
	for i := range x {
		x[i] *= a
	}
}

// dot returns Σ x[i]·y[i] (tensor.Dot's order for float32, index order for
// float64).
func dot[F Float](x, y []F) F {
	if is32[F]() {
		return F(tensor.Dot(as32(x), as32(y)))
	}
	var s F
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// expSubGrad sets p[i] = e^(p[i] − l) and dp[i] = p[i]·(dp[i] − c).
func expSubGrad[F Float](p, dp []F, l, c F) {
	if is32[F]() {
		tensor.ExpSubGrad(as32(p), as32(dp), float32(l), float32(c))
		return
	}
	expSub(p, l)
	for j := range p {
		dp[j] = p[j] * (dp[j] - c)
	}
}
