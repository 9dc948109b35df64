package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gantryml/gantry/internal/tensor"
)

// ErrInput is wrapped by errors about the tokens or cache given to Forward.
var ErrInput = errors.New("invalid forward input")

// Cache holds the keys and values of the tokens already fed for B rows
// decoded together, so later tokens attend to them without recomputing.
//
// Memory layout: K[l] and V[l] are [B, KVHeads, MaxT, Dim] row-major; slot
// s of row b holds the (rotated) key and the value of the s-th token fed
// for that row, padding included. Valid[b·MaxT+s] says whether slot s holds
// a real token and PosOf[b·MaxT+s] its position id. Pos[b] is the position
// id row b's next real token gets: positions count real tokens only, so a
// left-padded row behaves exactly like the unpadded one.
type Cache struct {
	B, MaxT      int
	KVHeads, Dim int
	Len          int // slots filled so far, the same for every row
	K, V         [][]float32
	Valid        []bool
	PosOf        []int32
	Pos          []int

	// team runs the parallel loops of one-token steps (decoding at batch
	// 1) on goroutines that stay awake between them; nil until the first
	// such step. It is closed when the cache is collected.
	team *tensor.Team
}

// decodeTeam returns the cache's Team, starting it on first use.
func (c *Cache) decodeTeam() *tensor.Team {
	if c.team == nil {
		c.team = tensor.NewTeam(runtime.GOMAXPROCS(0))
		runtime.AddCleanup(c, func(t *tensor.Team) { t.Close() }, c.team)
	}
	return c.team
}

// maxCacheFloats bounds one layer's K or V so a hostile request cannot
// allocate without limit (2³² floats = 16 GiB).
const maxCacheFloats = 1 << 32

// NewCache allocates a cache for b rows of up to maxT tokens each.
func (m *Model) NewCache(b, maxT int) (*Cache, error) {
	c := &m.Config
	if b <= 0 || maxT <= 0 {
		return nil, fmt.Errorf("%w: cache of %d rows × %d tokens", ErrInput, b, maxT)
	}
	per := int64(b) * int64(c.NumKeyValueHeads) * int64(maxT) * int64(c.Dim())
	if per > maxCacheFloats || int64(b)*int64(maxT) > maxCacheFloats {
		return nil, fmt.Errorf("%w: cache of %d rows × %d tokens is too large", ErrInput, b, maxT)
	}
	kv := &Cache{B: b, MaxT: maxT, KVHeads: c.NumKeyValueHeads, Dim: c.Dim(), K: make([][]float32, c.NumHiddenLayers), V: make([][]float32, c.NumHiddenLayers),
		Valid: make([]bool, b*maxT), PosOf: make([]int32, b*maxT), Pos: make([]int, b)}
	for l := range kv.K {
		kv.K[l] = make([]float32, per)
		kv.V[l] = make([]float32, per)
	}
	return kv, nil
}

// Grow enlarges the cache to hold maxT slots per row (a no-op when it
// already does), keeping its contents.
func (kv *Cache) Grow(maxT int) error {
	if maxT <= kv.MaxT {
		return nil
	}
	blocks := kv.B * kv.KVHeads // blocks of [MaxT, Dim] per layer
	per := int64(blocks) * int64(maxT) * int64(kv.Dim)
	if per > maxCacheFloats || int64(kv.B)*int64(maxT) > maxCacheFloats {
		return fmt.Errorf("%w: cache of %d rows × %d tokens is too large", ErrInput, kv.B, maxT)
	}
	D, used := kv.Dim, kv.Len*kv.Dim
	for l := range kv.K {
		for _, buf := range []*[]float32{&kv.K[l], &kv.V[l]} {
			nb := make([]float32, per)
			for h := 0; h < blocks; h++ {
				copy(nb[h*maxT*D:h*maxT*D+used], (*buf)[h*kv.MaxT*D:h*kv.MaxT*D+used])
			}
			*buf = nb
		}
	}
	valid := make([]bool, kv.B*maxT)
	posOf := make([]int32, kv.B*maxT)
	for b := 0; b < kv.B; b++ {
		copy(valid[b*maxT:b*maxT+kv.Len], kv.Valid[b*kv.MaxT:b*kv.MaxT+kv.Len])
		copy(posOf[b*maxT:b*maxT+kv.Len], kv.PosOf[b*kv.MaxT:b*kv.MaxT+kv.Len])
	}
	kv.Valid, kv.PosOf, kv.MaxT = valid, posOf, maxT
	return nil
}

// Forward feeds T new tokens for each of the cache's B rows and returns
// logits. tokens is [B, T] row-major; valid is [B, T] (true for a real
// token, false for padding) or nil when every token is real. The tokens
// are appended to cache; a nil cache means a one-shot forward with a
// fresh cache of exactly T slots. Logits are [B, T, vocab] row-major, or
// [B, vocab] for each row's last slot when lastOnly is set (with left
// padding that is the last real token). Logits at padded slots are
// unspecified. After an error the cache's contents are unspecified.
func (m *Model) Forward(ctx context.Context, cache *Cache, tokens []int, valid []bool, B, T int, lastOnly bool) ([]float32, error) {
	c := &m.Config
	w := &m.Weights
	if B <= 0 || T <= 0 || len(tokens) != B*T || (valid != nil && len(valid) != B*T) {
		return nil, fmt.Errorf("%w: %d tokens and %d mask entries for %d rows × %d", ErrInput, len(tokens), len(valid), B, T)
	}
	if cache == nil {
		var err error
		if cache, err = m.NewCache(B, T); err != nil {
			return nil, err
		}
	}
	if cache.B != B || cache.Len+T > cache.MaxT {
		return nil, fmt.Errorf("%w: %d rows × %d new tokens do not fit a cache of %d rows with %d of %d slots used", ErrInput, B, T, cache.B, cache.Len, cache.MaxT)
	}
	for i, id := range tokens {
		if (valid == nil || valid[i]) && (id < 0 || id >= c.VocabSize) {
			return nil, fmt.Errorf("%w: token id %d at row %d, index %d is outside the vocabulary [0, %d)", ErrInput, id, i/T, i%T, c.VocabSize)
		}
	}
	C, D, H, KVH, I := c.HiddenSize, c.Dim(), c.NumAttentionHeads, c.NumKeyValueHeads, c.IntermediateSize
	BT := B * T
	start := cache.Len

	// Position ids: real tokens count on from the row's previous ones.
	pos := make([]int, BT)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			i := b*T + t
			real := valid == nil || valid[i]
			slot := b*cache.MaxT + start + t
			cache.Valid[slot] = real
			if real {
				pos[i] = cache.Pos[b]
				cache.Pos[b]++
			}
			cache.PosOf[slot] = int32(pos[i])
		}
	}
	half := D / 2
	cos, sin := make([]float32, BT*half), make([]float32, BT*half)
	ropeTables(cos, sin, m.ropeFreq, pos)

	// Activations, each [BT, width] row-major.
	x := make([]float32, BT*C)
	xn := make([]float32, BT*C)
	q := make([]float32, BT*H*D)
	k := make([]float32, BT*KVH*D)
	v := make([]float32, BT*KVH*D)
	att := make([]float32, BT*H*D)
	g := make([]float32, BT*I)
	u := make([]float32, BT*I)

	// One token at a time (decoding at batch 1): ~150 products of well
	// under a millisecond each, run on the cache's Team.
	var team *tensor.Team
	if BT == 1 {
		team = cache.decodeTeam()
		defer runtime.KeepAlive(cache) // its cleanup closes team: not before the last Run
	}
	EmbeddingForward(x, w.Embed, tokens, valid, C)
	for l := range w.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		L := &w.Layers[l]
		RMSNormForward(xn, x, L.InputNorm, BT, C, float32(c.RMSNormEps))
		linearsForward(team, xn, BT, Out{q, L.Q}, Out{k, L.K}, Out{v, L.V})
		RopeForward(q, cos, sin, BT, H, D)
		RopeForward(k, cos, sin, BT, KVH, D)
		// Append k and v to the cache: [BT, KVH, D] → [B, KVH, MaxT, D].
		for b := 0; b < B; b++ {
			for t := 0; t < T; t++ {
				for h := 0; h < KVH; h++ {
					src := ((b*T+t)*KVH + h) * D
					dst := ((b*KVH+h)*cache.MaxT + start + t) * D
					copy(cache.K[l][dst:dst+D], k[src:src+D])
					copy(cache.V[l][dst:dst+D], v[src:src+D])
				}
			}
		}
		attentionForward(team, att, q, cache, l, B, T, H, c.Window())
		linearAddForward(team, x, att, L.O, BT)
		RMSNormForward(xn, x, L.PostAttnNorm, BT, C, float32(c.RMSNormEps))
		linearsForward(team, xn, BT, Out{g, L.Gate}, Out{u, L.Up})
		SwiGLUForward(g, g, u)
		linearAddForward(team, x, g, L.Down, BT)
	}
	cache.Len += T

	rows := BT
	if lastOnly {
		rows = B
		for b := 0; b < B; b++ {
			copy(x[b*C:(b+1)*C], x[(b*T+T-1)*C:(b*T+T)*C])
		}
	}
	RMSNormForward(xn[:rows*C], x[:rows*C], w.Norm, rows, C, float32(c.RMSNormEps))
	logits := make([]float32, rows*c.VocabSize)
	matMulT(team, logits, xn, w.LMHead, rows, c.VocabSize, C, false)
	return logits, nil
}

// EmbeddingForward gathers rows of table [vocab, C] into out [len(ids), C];
// padded slots (valid false) get zeros.
func EmbeddingForward(out, table []float32, ids []int, valid []bool, C int) {
	for i, id := range ids {
		row := out[i*C : (i+1)*C]
		if valid != nil && !valid[i] {
			clear(row)
			continue
		}
		copy(row, table[id*C:(id+1)*C])
	}
}

// RMSNormForward computes out[n] = x[n] / sqrt(mean(x[n]²) + eps) · w for
// each of N rows of x [N, C] (HF's LlamaRMSNorm in fp32). out may alias x.
func RMSNormForward(out, x, w []float32, N, C int, eps float32) {
	for n := 0; n < N; n++ {
		row := x[n*C : (n+1)*C]
		var ss float32
		for _, v := range row {
			ss += v * v
		}
		r := float32(1 / math.Sqrt(float64(ss/float32(C)+eps)))
		o := out[n*C : (n+1)*C]
		for i, v := range row {
			o[i] = w[i] * (v * r)
		}
	}
}

// LinearForward computes out [N, l.Out] = x [N, l.In] · l.Wᵀ + l.B.
func LinearForward(out, x []float32, l Linear, N int) {
	MatMulT(out, x, l.W, N, l.Out, l.In, false)
	addBias(out, l.B, N)
}

// linearAddForward computes out [N, l.Out] += x [N, l.In] · l.Wᵀ + l.B
// (a linear layer feeding a residual connection), on team when N = 1.
func linearAddForward(team *tensor.Team, out, x []float32, l Linear, N int) {
	matMulT(team, out, x, l.W, N, l.Out, l.In, true)
	addBias(out, l.B, N)
}

// gemvRows is the largest row count MatMulT computes with tensor.GemvBatch
// (matrix-vector products reading W once from memory, each row's result
// the same as alone) rather than with Sgemm, whose packing costs more than
// it saves for so few rows.
// Decoding runs at 1 to gemvRows rows per step.
const gemvRows = 4

// MatMulT computes out [N, outDim] = x [N, in] · Wᵀ for W [outDim, in]
// row-major, or adds the product to out when accumulate is set. Up to
// gemvRows rows go through tensor.GemvBatch, more through tensor.Sgemm; both
// split the output over goroutines and sum every element in an order that
// does not depend on the thread count.
func MatMulT(out, x, W []float32, N, outDim, in int, accumulate bool) {
	matMulT(nil, out, x, W, N, outDim, in, accumulate)
}

// matMulT is MatMulT with one row (N = 1) run on team when it is not nil:
// the rows of W in groups of four over its goroutines, each a one-thread
// tensor.Gemv, so the results are the same.
func matMulT(team *tensor.Team, out, x, W []float32, N, outDim, in int, accumulate bool) {
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	if N == 1 && team != nil {
		one := tensor.Default()
		one.Threads = 1
		team.Run((outDim+3)/4, func(lo, hi int) {
			a, b := lo*4, min(hi*4, outDim)
			one.Gemv(out[a:b], W[a*in:b*in], x, b-a, in, beta)
		})
		return
	}
	if N > gemvRows {
		tensor.Sgemm(false, true, N, outDim, in, 1, x, in, W, in, beta, out, outDim)
		return
	}
	tensor.GemvBatch(out, W, x, N, outDim, in, beta)
}

// Out pairs a linear layer with the buffer [N, L.Out] its output goes to.
type Out struct {
	Y []float32
	L Linear
}

// LinearsForward computes LinearForward(o.Y, x, o.L, N) for every o, all
// layers reading the same input x [N, in]. For one row (batch-1 decoding)
// the rows of all the weight matrices are split over goroutines together,
// so the products share one synchronisation point instead of one each;
// each row is still one tensor.Gemv dot product, so the results are those
// of LinearForward.
func LinearsForward(x []float32, N int, outs ...Out) { linearsForward(nil, x, N, outs...) }

func linearsForward(team *tensor.Team, x []float32, N int, outs ...Out) {
	if N != 1 {
		for _, o := range outs {
			LinearForward(o.Y, x, o.L, N)
		}
		return
	}
	total := 0
	for _, o := range outs {
		total += o.L.Out
	}
	one := tensor.Default()
	one.Threads = 1
	groups := (total + 3) / 4
	parallelFor(team, groups, func(lo, hi int) {
		r0, r1 := lo*4, min(hi*4, total) // rows of the stacked matrices
		base := 0
		for _, o := range outs {
			a, b := max(r0, base)-base, min(r1, base+o.L.Out)-base
			if a < b {
				in := o.L.In
				one.Gemv(o.Y[a:b], o.L.W[a*in:b*in], x, b-a, in, 0)
			}
			base += o.L.Out
		}
	})
	for _, o := range outs {
		addBias(o.Y, o.L.B, 1)
	}
}

func addBias(out, b []float32, N int) {
	if b == nil {
		return
	}
	n := len(b)
	for r := 0; r < N; r++ {
		row := out[r*n : (r+1)*n]
		for i, v := range b {
			row[i] += v
		}
	}
}

// RopeForward rotates x [N, heads, D] in place by the rotary embedding
// with tables cos, sin [N, D/2], in HF's rotate_half convention: the pair
// (x[i], x[i+D/2]) turns by angle i.
func RopeForward(x, cos, sin []float32, N, heads, D int) {
	half := D / 2
	for n := 0; n < N; n++ {
		cs, sn := cos[n*half:(n+1)*half], sin[n*half:(n+1)*half]
		for h := 0; h < heads; h++ {
			v := x[(n*heads+h)*D : (n*heads+h+1)*D]
			for i := 0; i < half; i++ {
				x1, x2 := v[i], v[i+half]
				v[i] = x1*cs[i] - x2*sn[i]
				v[i+half] = x2*cs[i] + x1*sn[i]
			}
		}
	}
}

// SwiGLUForward computes out = silu(gate) · up elementwise, silu(x) =
// x·sigmoid(x), with tensor.SiLU (vectorised, within 3 ulp of the exact
// value). out may alias gate or up. swigluChunk elements at a time go
// through a stack buffer, so aliasing never overwrites an input still
// needed.
func SwiGLUForward(out, gate, up []float32) {
	var buf [swigluChunk]float32
	for lo := 0; lo < len(gate); lo += swigluChunk {
		hi := min(lo+swigluChunk, len(gate))
		s := buf[:hi-lo]
		tensor.SiLU(s, gate[lo:hi])
		u, o := up[lo:hi], out[lo:hi]
		for i, v := range s {
			o[i] = v * u[i]
		}
	}
}

// swigluChunk is the number of elements SwiGLUForward converts per call of
// tensor.SiLU: long enough to amortise the call, short enough to stay in L1.
const swigluChunk = 512

// AttentionForward computes causal grouped-query attention for the T
// newest slots of every row: out [B, T, H, D] from queries q [B, T, H, D]
// and the keys and values of layer l in cache (which already hold the new
// slots). Query head h reads key/value head h / (H / KVHeads). A query
// attends to the real slots up to its own, and, when window > 0, only to
// those fewer than window positions behind it. Padded queries get zeros.
//
// Work is split over (row, head) pairs, each on one goroutine. Queries go
// in blocks of up to attnBlock: a block of more than gemvRows queries (a
// prompt) computes its scores S = q·Kᵀ/√D and then S·V with two
// single-threaded tensor.Sgemm calls; fewer (decoding) use tensor.Gemv per
// query for the scores. Softmax numerators come from tensor.ExpInPlace.
// Each output is summed in a fixed order, so results do not depend on the
// number of goroutines.
func AttentionForward(out, q []float32, cache *Cache, l, B, T, H, window int) {
	attentionForward(nil, out, q, cache, l, B, T, H, window)
}

func attentionForward(team *tensor.Team, out, q []float32, cache *Cache, l, B, T, H, window int) {
	D := len(q) / (B * T * H)
	KVH := len(cache.K[l]) / (cache.B * cache.MaxT * D)
	group := H / KVH
	start := cache.Len
	scale := float32(1 / math.Sqrt(float64(D)))
	// Each (row, head) runs on one goroutine, so its products do too.
	one := tensor.Default()
	one.Threads = 1
	ld := H * D // stride between the queries (and outputs) of one head
	parallelFor(team, B*H, func(lo, hi int) {
		scores := make([]float32, min(T, attnBlock)*(start+T))
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			kvBase := (b*KVH + h/group) * cache.MaxT * D
			keys, vals := cache.K[l][kvBase:], cache.V[l][kvBase:]
			mask := cache.Valid[b*cache.MaxT:]
			posOf := cache.PosOf[b*cache.MaxT:]
			for t0 := 0; t0 < T; t0 += attnBlock {
				t1 := min(t0+attnBlock, T)
				nq, n := t1-t0, start+t1 // queries; slots the last one sees
				S := scores[:nq*n]       // [nq, n]: probabilities of query t0+j in row j
				qb := q[((b*T+t0)*H+h)*D:]
				ob := out[((b*T+t0)*H+h)*D:]
				if nq > gemvRows {
					one.Sgemm(false, true, nq, n, D, scale, qb, ld, keys, D, 0, S, n)
				} else {
					for j := 0; j < nq; j++ {
						row := S[j*n : (j+1)*n]
						one.Gemv(row, keys, qb[j*ld:], n, D, 0)
						for s := range row {
							row[s] *= scale
						}
					}
				}
				for j := 0; j < nq; j++ {
					self := start + t0 + j
					row := S[j*n : (j+1)*n]
					if !mask[self] {
						clear(row)
						continue
					}
					softmaxRow(row[:self+1], mask, posOf, posOf[self], window)
					clear(row[self+1:])
				}
				if nq > gemvRows {
					one.Sgemm(false, false, nq, D, n, 1, S, n, vals, D, 0, ob, ld)
					continue
				}
				for j := 0; j < nq; j++ {
					o := ob[j*ld : j*ld+D]
					clear(o)
					for s, p := range S[j*n : (j+1)*n] {
						if p == 0 {
							continue
						}
						vv := vals[s*D : (s+1)*D]
						for i := range o {
							o[i] += p * vv[i]
						}
					}
				}
			}
		}
	})
}

// attnBlock is the most queries of one head AttentionForward scores at
// once: it bounds the scores buffer to attnBlock × context floats.
const attnBlock = 128

// softmaxRow turns row, the scaled scores of slots 0 … len(row)−1 for a
// query at position qpos, into probabilities: slots not real (mask) or, when
// window > 0, window or more positions behind qpos get exactly 0, the others
// e^(score − max)/Σ. The query's own slot, the last, must be real.
func softmaxRow(row []float32, mask []bool, posOf []int32, qpos int32, window int) {
	masked := func(s int) bool {
		return !mask[s] || (window > 0 && int(qpos-posOf[s]) >= window)
	}
	maxS := float32(math.Inf(-1))
	for s, v := range row {
		if !masked(s) {
			maxS = max(maxS, v)
		}
	}
	for s, v := range row {
		row[s] = v - maxS
	}
	tensor.ExpInPlace(row)
	var sum float32
	for s, e := range row {
		if masked(s) {
			row[s] = 0 // not e^(clamped −Inf): exactly nothing
			continue
		}
		sum += e
	}
	inv := 1 / sum
	for s := range row {
		row[s] *= inv
	}
}

// parallelFor splits [0, n) into contiguous chunks, one per CPU, and runs
// f on each concurrently: on team's goroutines when team is not nil, else
// on new ones.
func parallelFor(team *tensor.Team, n int, f func(lo, hi int)) {
	if team != nil {
		team.Run(n, f)
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// CrossEntropy returns the mean of -log softmax(logits[i])[targets[i]] over
// the rows of logits [len(targets), vocab] whose target is not negative.
func CrossEntropy(logits []float32, targets []int, vocab int) float64 {
	var total float64
	n := 0
	for i, tgt := range targets {
		if tgt < 0 {
			continue
		}
		row := logits[i*vocab : (i+1)*vocab]
		maxV := math.Inf(-1)
		for _, v := range row {
			maxV = math.Max(maxV, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - maxV)
		}
		total += maxV + math.Log(s) - float64(row[tgt])
		n++
	}
	if n == 0 {
		return 0
	}
	return total / float64(n)
}
