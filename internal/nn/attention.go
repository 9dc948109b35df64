package nn

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
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

// AttentionScratch returns the scratch length AttentionForward and
// AttentionBackward need: two [attnBlock, T] tiles per goroutine.
func AttentionScratch(s AttentionShape) int {
	return s.threads() * 2 * attnBlock * s.T
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
	group := H / KV
	HD, KVD := H*D, KV*D
	scale := F(1 / math.Sqrt(float64(D)))
	parallelFor(B*KV, s.threads(), func(item, w int) {
		b, kvh := item/KV, item%KV
		L := s.length(b)
		P := scratch[w*2*attnBlock*T : (w*2+1)*attnBlock*T]
		for h := kvh * group; h < (kvh+1)*group; h++ {
			for i0 := 0; i0 < L; i0 += attnBlock {
				i1 := min(i0+attnBlock, L)
				k0 := s.keyStart(i0) // keys k0..i1−1 cover every row of the tile
				rows, n := i1-i0, i1-k0
				qo := (b*T+i0)*HD + h*D
				ko := (b*T+k0)*KVD + kvh*D
				// P[rows, n] = scale · Q[i0:i1]·K[k0:i1]ᵀ
				gemm1(false, true, rows, n, D, scale, q[qo:], HD, k[ko:], KVD, 0, P, n)
				for r := 0; r < rows; r++ {
					t := i0 + r
					p := P[r*n : (r+1)*n]
					lo, hi := s.keyStart(t)-k0, t-k0+1 // the row's keys, within the tile
					m := p[lo]
					for _, x := range p[lo:hi] {
						m = max(m, x)
					}
					sum := expSub(p[lo:hi], m)
					inv := F(1 / sum)
					for j := lo; j < hi; j++ {
						p[j] *= inv
					}
					clear(p[:lo])
					clear(p[hi:])
					lse[(b*H+h)*T+t] = m + F(math.Log(sum))
				}
				gemm1(false, false, rows, D, n, 1, P, n, v[ko:], KVD, 0, out[qo:], HD)
			}
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
	group := H / KV
	HD, KVD := H*D, KV*D
	scale := F(1 / math.Sqrt(float64(D)))
	parallelFor(B*KV, s.threads(), func(item, w int) {
		b, kvh := item/KV, item%KV
		L := s.length(b)
		P := scratch[w*2*attnBlock*T : (w*2+1)*attnBlock*T]
		dP := scratch[(w*2+1)*attnBlock*T : (w*2+2)*attnBlock*T]
		ko := b*T*KVD + kvh*D
		for t := 0; t < T; t++ {
			clear(dk[ko+t*KVD : ko+t*KVD+D])
			clear(dv[ko+t*KVD : ko+t*KVD+D])
		}
		for h := kvh * group; h < (kvh+1)*group; h++ {
			for i0 := 0; i0 < L; i0 += attnBlock {
				i1 := min(i0+attnBlock, L)
				k0 := s.keyStart(i0)
				rows, n := i1-i0, i1-k0
				qo := (b*T+i0)*HD + h*D
				kt := ko + k0*KVD
				gemm1(false, true, rows, n, D, scale, q[qo:], HD, k[kt:], KVD, 0, P, n)
				gemm1(false, true, rows, n, D, 1, dout[qo:], HD, v[kt:], KVD, 0, dP, n)
				for r := 0; r < rows; r++ {
					t := i0 + r
					p, dp := P[r*n:(r+1)*n], dP[r*n:(r+1)*n]
					lo, hi := s.keyStart(t)-k0, t-k0+1
					l := lse[(b*H+h)*T+t]
					var dsum F
					o, do := out[qo+r*HD:qo+r*HD+D], dout[qo+r*HD:qo+r*HD+D]
					for j := range o {
						dsum += o[j] * do[j]
					}
					expSub(p[lo:hi], l)
					for j := lo; j < hi; j++ {
						dp[j] = p[j] * (dp[j] - dsum)
					}
					clear(p[:lo])
					clear(p[hi:])
					clear(dp[:lo])
					clear(dp[hi:])
				}
				// dq rows are owned by this tile; dk, dv accumulate over tiles and heads.
				gemm1(false, false, rows, D, n, scale, dP, n, k[kt:], KVD, 0, dq[qo:], HD)
				gemm1(true, false, n, D, rows, scale, dP, n, q[qo:], HD, 1, dk[kt:], KVD)
				gemm1(true, false, n, D, rows, 1, P, n, dout[qo:], HD, 1, dv[kt:], KVD)
			}
			for t := L; t < T; t++ {
				clear(dq[(b*T+t)*HD+h*D : (b*T+t)*HD+(h+1)*D])
			}
		}
	})
}
