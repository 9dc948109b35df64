package nn

import (
	"math"
	"runtime"
	"unsafe"

	"github.com/gantryml/gantry/internal/tensor"
)

// Float is the element type of the layer functions: float32 for training,
// float64 for the finite-difference gradient checks. Every layer function
// is written once, generically, so the checked code is the code that runs.
type Float interface{ ~float32 | ~float64 }

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices with
// tensor.Sgemm's semantics. float32 goes to tensor.Sgemm (multi-threaded);
// float64 (the gradient-check path) goes to a plain triple loop.
func gemm[F Float](transA, transB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	gemmWith(tensor.Default(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemm1 is gemm on the calling goroutine only, for products issued from
// inside parallel loops (attention tiles), where nested threads would only
// contend for the same cores.
func gemm1[F Float](transA, transB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	cfg := tensor.Default()
	cfg.Threads = 1
	gemmWith(cfg, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmWith[F Float](cfg tensor.Config, transA, transB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if is32[F]() {
		cfg.Sgemm(transA, transB, m, n, k, float32(alpha), as32(a), lda, as32(b), ldb, float32(beta), as32(c), ldc)
		return
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s F
			for p := 0; p < k; p++ {
				var av, bv F
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// EmbeddingForward gathers rows of the embedding table.
// tokens [N]; table [V, C] row-major; out [N, C].
func EmbeddingForward[F Float](out []F, tokens []int32, table []F, N, C int) {
	parallelChunks(N, rowChunk(C), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			t := int(tokens[i])
			copy(out[i*C:(i+1)*C], table[t*C:(t+1)*C])
		}
	})
}

// EmbeddingBackward adds each row of dout to the gradient row of its token.
// dtable [V, C] (accumulated); dout [N, C]; tokens [N]. Rows are added in
// index order, so the result does not depend on timing.
func EmbeddingBackward[F Float](dtable, dout []F, tokens []int32, N, C int) {
	for i := 0; i < N; i++ {
		t := int(tokens[i])
		d := dtable[t*C : (t+1)*C]
		for j, v := range dout[i*C : (i+1)*C] {
			d[j] += v
		}
	}
}

// RMSNormForward computes out = x / sqrt(mean(x²) + eps) · w row by row
// (Llama's RMSNorm) and saves the reciprocal root rstd for the backward.
// x, out [N, C] (may alias); w [C]; rstd [N]. The mean of squares is
// accumulated in float64.
func RMSNormForward[F Float](out, rstd, x, w []F, N, C int, eps float64) {
	parallelChunks(N, rowChunk(C), func(i0, i1 int) { rmsNormRows(out, rstd, x, w, i0, i1, C, eps) })
}

func rmsNormRows[F Float](out, rstd, x, w []F, i0, i1, C int, eps float64) {
	for i := i0; i < i1; i++ {
		xi := x[i*C : (i+1)*C]
		ss := sumSquares(xi)
		r := F(1 / math.Sqrt(ss/float64(C)+eps))
		rstd[i] = r
		scaleMul(out[i*C:(i+1)*C], xi, r, w)
	}
}

// sumSquares returns Σ x[i]² in float64 (tensor.SumSquares' order for
// float32).
func sumSquares[F Float](x []F) float64 {
	if is32[F]() {
		return tensor.SumSquares(as32(x))
	}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return ss
}

// scaleMul sets out[j] = x[j]·r·w[j] (multiplied left to right).
func scaleMul[F Float](out, x []F, r F, w []F) {
	if is32[F]() {
		tensor.ScaleMul(as32(out), as32(x), float32(r), as32(w))
		return
	}
	for j, v := range x {
		out[j] = v * r * w[j]
	}
}

// ResidualRMSNormForward is ResidualForward followed by RMSNormForward of
// its result, row by row while the row is in cache: h = a + b, then
// out = h / sqrt(mean(h²) + eps) · w with rstd saved.
// h, a, b, out [N, C] (h may alias a or b); w [C]; rstd [N].
func ResidualRMSNormForward[F Float](h, out, rstd, a, b, w []F, N, C int, eps float64) {
	parallelChunks(N, rowChunk(C), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			hi := h[i*C : (i+1)*C]
			var ss float64
			if is32[F]() {
				ss = tensor.AddSumSquares(as32(hi), as32(a[i*C:(i+1)*C]), as32(b[i*C:(i+1)*C]))
			} else {
				for j, v := range a[i*C : (i+1)*C] {
					hi[j] = v + b[i*C+j]
				}
				ss = sumSquares(hi)
			}
			r := F(1 / math.Sqrt(ss/float64(C)+eps))
			rstd[i] = r
			scaleMul(out[i*C:(i+1)*C], hi, r, w)
		}
	})
}

// RMSNormRecompute rebuilds the forward output from x and the saved rstd
// (the trainer keeps x and rstd, not the normalised rows).
// x, out [N, C]; w [C]; rstd [N].
func RMSNormRecompute[F Float](out, rstd, x, w []F, N, C int) {
	parallelChunks(N, rowChunk(C), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			scaleMul(out[i*C:(i+1)*C], x[i*C:(i+1)*C], rstd[i], w)
		}
	})
}

// rowChunk is the number of rows of width C per parallel chunk (about 16K
// elements).
func rowChunk(C int) int { return max(1, (1<<14)/max(C, 1)) }

// RMSNormBackward adds ∂L/∂x to dx and ∂L/∂w to dw, given dout = ∂L/∂out.
// dx, dout, x [N, C]; w, dw [C]; rstd [N]. dx or dw may be nil when not
// wanted. With x̂ = x·r: dw += Σ_rows dout∘x̂ and
// dx += r·(dout∘w − x̂·mean(dout∘w∘x̂)).
func RMSNormBackward[F Float](dx, dw, dout, x, rstd, w []F, N, C int) {
	if dw != nil {
		// Summed over rows in row order (deterministic), columns split
		// over threads.
		parallelChunks(C, colChunk, func(j0, j1 int) {
			for i := 0; i < N; i++ {
				r := rstd[i]
				xi, di, dwi := x[i*C+j0:i*C+j1], dout[i*C+j0:i*C+j1], dw[j0:j1]
				for j, v := range xi {
					dwi[j] += di[j] * v * r
				}
			}
		})
	}
	if dx == nil {
		return
	}
	parallelChunks(N, rowChunk(C), func(i0, i1 int) {
		if is32[F]() { // the same steps, the dot product summed in float64
			for i := i0; i < i1; i++ {
				tensor.RMSNormGradRow(as32(dx[i*C:(i+1)*C]), as32(dout[i*C:(i+1)*C]), as32(x[i*C:(i+1)*C]), as32(w), float32(rstd[i]))
			}
			return
		}
		for i := i0; i < i1; i++ {
			r := rstd[i]
			xi, di := x[i*C:(i+1)*C], dout[i*C:(i+1)*C]
			var dot F
			for j, v := range xi {
				dot += di[j] * w[j] * v * r
			}
			dot /= F(C)
			dxi := dx[i*C : (i+1)*C]
			for j, v := range xi {
				dxi[j] += r * (di[j]*w[j] - v*r*dot)
			}
		}
	})
}

// LinearForward computes y = x·Wᵀ + b.
// x [N, in]; W [out, in] row-major (Hugging Face layout); b [out] or nil;
// y [N, out] (overwritten).
func LinearForward[F Float](y, x, w, b []F, N, in, out int) {
	linearForward(y, x, matRef[F]{f: w}, b, N, in, out)
}

func linearForward[F Float](y, x []F, w matRef[F], b []F, N, in, out int) {
	w.mulNT(N, out, in, 1, x, in, 0, y, out)
	if b != nil {
		parallelChunks(N, rowChunk(out), func(i0, i1 int) {
			for i := i0; i < i1; i++ {
				yi := y[i*out : (i+1)*out]
				for j := range yi {
					yi[j] += b[j]
				}
			}
		})
	}
}

// LinearBackward accumulates the gradients of y = x·Wᵀ + b given dy:
// dx += dy·W [N, in], dW += dyᵀ·x [out, in], db += Σ_rows dy [out].
// Any of dx, dw, db may be nil to skip that product (frozen weights, or no
// gradient needed below).
func LinearBackward[F Float](dx, dw, db, dy, x, w []F, N, in, out int) {
	linearBackward(dx, dw, db, dy, x, matRef[F]{f: w}, N, in, out, 1)
}

// linearBackward is LinearBackward with dx = dy·W + dxBeta·dx (dxBeta 0:
// dx need not be cleared).
func linearBackward[F Float](dx, dw, db, dy, x []F, w matRef[F], N, in, out int, dxBeta F) {
	if dx != nil {
		w.mulNN(N, in, out, 1, dy, out, dxBeta, dx, in)
	}
	if dw != nil {
		gemm(true, false, out, in, N, 1, dy, out, x, in, 1, dw, in)
	}
	if db != nil {
		colSums(db, dy, N, out)
	}
}

// LoRAForward adds the low-rank update of a LoRA adapter:
// u = x·Aᵀ and y += scale·u·Bᵀ.
// x [N, in] (the adapter's input, after dropout); A [r, in]; B [out, r];
// u [N, r] (overwritten, saved for the backward); y [N, out] (accumulated).
func LoRAForward[F Float](y, u, x, a, b []F, scale F, N, in, out, r int) {
	gemm(false, true, N, r, in, 1, x, in, a, in, 0, u, r)
	gemm(false, true, N, out, r, scale, u, r, b, r, 1, y, out)
}

// LoRABackward accumulates the gradients of LoRAForward given dy:
// dB += scale·dyᵀ·u, du = scale·dy·B (scratch [N, r], overwritten),
// dA += duᵀ·x and, when dx is not nil, dx += du·A.
func LoRABackward[F Float](dx, da, db, du, dy, x, u, a, b []F, scale F, N, in, out, r int) {
	loraBackward(dx, da, db, du, make([]F, r*out), dy, x, u, a, b, scale, N, in, out, r)
}

// loraBackward is LoRABackward with scratch dbT [r, out] for dBᵀ: the
// product is formed as scale·uᵀ·dy (r rows of out columns) and added to
// dB transposed, a shape the GEMM runs ~2.5× faster than dyᵀ·u with its
// r-wide output.
func loraBackward[F Float](dx, da, db, du, dbT, dy, x, u, a, b []F, scale F, N, in, out, r int) {
	loraBackwardB(db, du, dbT, dy, u, b, scale, N, out, r)
	gemm(true, false, r, in, N, 1, du, r, x, in, 1, da, in)
	if dx != nil {
		gemm(false, false, N, in, r, 1, du, r, a, in, 1, dx, in)
	}
}

// loraBackwardB is the B half of loraBackward: dB += scale·dyᵀ·u (through
// dbT) and du = scale·dy·B.
func loraBackwardB[F Float](db, du, dbT, dy, u, b []F, scale F, N, out, r int) {
	gemm(true, false, r, out, N, scale, u, r, dy, out, 0, dbT, out)
	for o := 0; o < out; o++ {
		row := db[o*r : (o+1)*r]
		for k := range row {
			row[k] += dbT[k*out+o]
		}
	}
	gemm(false, false, N, r, out, scale, dy, out, b, r, 0, du, r)
}

// LoRAForwardDropout is LoRAForward on the dropped-out input
// xd = DropoutForward(x, mask, p), or on x itself when mask is nil:
// u = xd·Aᵀ, y += scale·u·Bᵀ. Where tensor.LoRAFused allows (float32,
// AVX-512, the width a multiple of 16, r of 8) each product runs on the
// fused kernels, rows split over threads: the down projection reads x and
// the mask bits directly (tensor.LoRADownDropout) and xd is never formed;
// the up projection adds scale·u·Bᵀ with Bᵀ transposed into bt [r, out]
// (tensor.LoRAUpDropoutAdd without a mask). Otherwise xd [N, in] is
// scratch for DropoutForward and the products are GEMMs.
func LoRAForwardDropout[F Float](y, u, x []F, mask []uint64, p float64, xd, bt, a, b []F, scale F, N, in, out, r int) {
	if is32[F]() && tensor.LoRAFused(in, r, 0) {
		s := float32(1) // x·1 is x: the products of LoRAForward
		if mask != nil {
			s = float32(1 / (1 - p)) // DropoutForward's scale
		}
		parallelChunks(N, rowChunk(in), func(i0, i1 int) {
			tensor.LoRADownDropout(as32(u[i0*r:i1*r]), as32(x[i0*in:i1*in]), mask, i0*in, s, as32(a), i1-i0, in, r)
		})
	} else {
		src := x
		if mask != nil {
			DropoutForward(xd, x, mask, p)
			src = xd
		}
		gemm(false, true, N, r, in, 1, src, in, a, in, 0, u, r)
	}
	if is32[F]() && tensor.LoRAFused(out, r, 0) {
		transposeInto(bt, b, out, r)
		parallelChunks(N, rowChunk(out), func(i0, i1 int) {
			tensor.LoRAUpDropoutAdd(as32(y[i0*out:i1*out]), as32(u[i0*r:i1*r]), nil, 0, float32(scale), as32(bt), i1-i0, out, r)
		})
		return
	}
	gemm(false, true, N, out, r, scale, u, r, b, r, 1, y, out)
}

// transposeInto sets t [c, rows] to the transpose of m [rows, c].
func transposeInto[F Float](t, m []F, rows, c int) {
	for i := 0; i < rows; i++ {
		for j, v := range m[i*c : (i+1)*c] {
			t[j*rows+i] = v
		}
	}
}

// LoRABackwardDropout is LoRABackward for LoRAForwardDropout (mask nil: no
// dropout): dB += scale·dyᵀ·u, du = scale·dy·B (scratch [N, r]),
// dA += duᵀ·xd and, when dx is not nil, dx += DropoutBackward of du·A
// (dx += du·A without a mask). Fused as in LoRAForwardDropout: the B side
// on tensor.LoRADownGradDropout (column strips over threads, dbT [r, out]
// then added to dB) and tensor.LoRADownDropout with Bᵀ in dbT; the A side
// on tensor.LoRADownGradDropout and tensor.LoRAUpDropoutAdd reading x and
// the mask bits. Otherwise GEMMs, with xd and dtmp [N, in] scratch for the
// dropout.
func LoRABackwardDropout[F Float](dx, da, db, du, dbT, dy, x []F, mask []uint64, p float64, xd, dtmp, u, a, b []F, scale F, N, in, out, r int) {
	if is32[F]() && tensor.LoRAFused(out, r, 0) {
		t := dbT[:r*out]
		clear(t)
		parallelChunks(out/16, 2, func(c0, c1 int) {
			tensor.LoRADownGradDropout(as32(t), as32(u), as32(dy), nil, 0, float32(scale), N, out, r, c0*16, c1*16)
		})
		for o := 0; o < out; o++ {
			row := db[o*r : (o+1)*r]
			for k := range row {
				row[k] += t[k*out+o]
			}
		}
		transposeInto(t, b, out, r)
		parallelChunks(N, rowChunk(out), func(i0, i1 int) {
			tensor.LoRADownDropout(as32(du[i0*r:i1*r]), as32(dy[i0*out:i1*out]), nil, 0, float32(scale), as32(t), i1-i0, out, r)
		})
	} else {
		loraBackwardB(db, du, dbT, dy, u, b, scale, N, out, r)
	}
	if is32[F]() && tensor.LoRAFused(in, r, 0) {
		s := float32(1)
		if mask != nil {
			s = float32(1 / (1 - p))
		}
		parallelChunks(in/16, 2, func(c0, c1 int) {
			tensor.LoRADownGradDropout(as32(da), as32(du), as32(x), mask, 0, s, N, in, r, c0*16, c1*16)
		})
		if dx != nil {
			parallelChunks(N, rowChunk(in), func(i0, i1 int) {
				tensor.LoRAUpDropoutAdd(as32(dx[i0*in:i1*in]), as32(du[i0*r:i1*r]), mask, i0*in, s, as32(a), i1-i0, in, r)
			})
		}
		return
	}
	if mask == nil {
		gemm(true, false, r, in, N, 1, du, r, x, in, 1, da, in)
		if dx != nil {
			gemm(false, false, N, in, r, 1, du, r, a, in, 1, dx, in)
		}
		return
	}
	DropoutForward(xd, x, mask, p)
	gemm(true, false, r, in, N, 1, du, r, xd, in, 1, da, in)
	if dx != nil {
		gemm(false, false, N, in, r, 1, du, r, a, in, 0, dtmp, in)
		DropoutBackward(dx, dtmp, mask, p)
	}
}

// DropoutMask fills mask with n keep-bits for dropout probability p: bit i
// is set when element i survives. Each mask word is drawn from its own
// stream (a splitmix64 hash of key and the word index seeds a wyrand
// generator), and each bit compares a 15-bit lane of it with p, so p is
// honoured to 1/32768. The mask is a pure function of (key, n, p): a run
// can be replayed from its RNG state, whatever the thread count.
// mask has (n+63)/64 words.
func DropoutMask(mask []uint64, n int, p float64, key uint64) {
	thresh := min(uint64(math.Round(p*32768)), 32767)
	words := (n + 63) / 64
	parallelChunks(words, 1024, func(w0, w1 int) {
		tensor.DropoutMaskWords(mask[w0:w1], w0, key, thresh)
	})
	if rem := n % 64; rem != 0 {
		mask[words-1] &= 1<<rem - 1
	}
}

// DropoutForward computes out = x·mask/(1−p) with the keep-bits of
// DropoutMask. x, out [n] (may alias).
func DropoutForward[F Float](out, x []F, mask []uint64, p float64) {
	tbl := [2]F{0, F(1 / (1 - p))}
	parallelChunks(len(x), 1<<14, func(i0, i1 int) {
		if is32[F]() { // i0 is a multiple of 64: mask word i0/64 onwards
			tensor.DropoutScale(as32(out[i0:i1]), as32(x[i0:i1]), mask[i0>>6:], float32(tbl[1]))
			return
		}
		// i0 is a multiple of 64: walk whole mask words.
		for w := i0 >> 6; w<<6 < i1; w++ {
			m, base := mask[w], w<<6
			xs, ys := x[base:min(base+64, i1)], out[base:min(base+64, i1)]
			for j := range ys {
				ys[j] = xs[j] * tbl[m&1]
				m >>= 1
			}
		}
	})
}

// DropoutBackward accumulates dx += dout·mask/(1−p) with the forward's mask.
func DropoutBackward[F Float](dx, dout []F, mask []uint64, p float64) {
	tbl := [2]F{0, F(1 / (1 - p))}
	parallelChunks(len(dout), 1<<14, func(i0, i1 int) {
		if is32[F]() {
			tensor.DropoutScaleAdd(as32(dx[i0:i1]), as32(dout[i0:i1]), mask[i0>>6:], float32(tbl[1]))
			return
		}
		for w := i0 >> 6; w<<6 < i1; w++ {
			m, base := mask[w], w<<6
			ds, dxs := dout[base:min(base+64, i1)], dx[base:min(base+64, i1)]
			for j := range dxs {
				dxs[j] += ds[j] * tbl[m&1]
				m >>= 1
			}
		}
	})
}

// IA3Forward scales every row by a learned vector: y[i, j] = x[i, j]·l[j].
// x, y [N, C] (may alias); l [C].
func IA3Forward[F Float](y, x, l []F, N, C int) {
	parallelChunks(N, rowChunk(C), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			xi, yi := x[i*C:(i+1)*C], y[i*C:(i+1)*C]
			if is32[F]() {
				tensor.ScaleMul(as32(yi), as32(xi), 1, as32(l[:C])) // x·1·l = x·l exactly
				continue
			}
			for j, v := range xi {
				yi[j] = v * l[j]
			}
		}
	})
}

// IA3Backward accumulates dl += Σ_rows dy∘x (when dl is not nil) and writes
// dx = dy∘l. dx may alias dy; x is the unscaled input. One pass over
// column blocks; the sums in dl run in row order (independent of the
// thread count).
func IA3Backward[F Float](dx, dl, dy, x, l []F, N, C int) {
	parallelChunks(C, colChunk, func(j0, j1 int) {
		if is32[F]() {
			tensor.ScaleGrad(as32(dx), as32(dl), as32(dy), as32(x), as32(l), N, C, j0, j1)
			return
		}
		for i := 0; i < N; i++ {
			o := i * C
			for j := j0; j < j1; j++ {
				d := dy[o+j]
				if dl != nil {
					dl[j] += d * x[o+j]
				}
				dx[o+j] = d * l[j]
			}
		}
	})
}

// colChunk is the column split of reductions over rows: each thread sums
// whole columns in row order, so results do not depend on the split.
const colChunk = 64

// colSums adds Σ_rows x to s: s [C] (accumulated), x [N, C].
func colSums[F Float](s, x []F, N, C int) {
	parallelChunks(C, colChunk, func(j0, j1 int) {
		for i := 0; i < N; i++ {
			si := s[j0:j1]
			for j, v := range x[i*C+j0 : i*C+j1] {
				si[j] += v
			}
		}
	})
}

// RoPETable fills cos and sin [T, D/2] for positions 0..T−1:
// cos[t, i] = cos(t·invFreq[i]), invFreq from model.RopeInvFreq.
func RoPETable[F Float](cos, sin []F, invFreq []float64, T int) {
	h := len(invFreq)
	for t := 0; t < T; t++ {
		for i, f := range invFreq {
			a := float64(float32(f) * float32(t)) // float32, as Hugging Face computes the angle
			cos[t*h+i] = F(math.Cos(a))
			sin[t*h+i] = F(math.Sin(a))
		}
	}
}

// RoPEForward rotates every head of x in place with the rotate_half
// convention: for i < D/2, (x[i], x[i+D/2]) becomes
// (x[i]·c − x[i+D/2]·s, x[i+D/2]·c + x[i]·s) with c, s at the row's position.
// x [B·T, heads·D] (row b·T+t has position t); cos, sin [T, D/2].
func RoPEForward[F Float](x, cos, sin []F, N, T, heads, D int) {
	parallelChunks(N, rowChunk(heads*D), func(i0, i1 int) { ropeRows(x, cos, sin, i0, i1, T, heads, D, false) })
}

// ropeRows rotates rows [i0, i1) forward, or backward (by −angle) when back.
func ropeRows[F Float](x, cos, sin []F, i0, i1, T, heads, D int, back bool) {
	h := D / 2
	for i := i0; i < i1; i++ {
		c, s := cos[(i%T)*h:(i%T+1)*h], sin[(i%T)*h:(i%T+1)*h]
		if is32[F]() { // the same steps, vectorised
			tensor.RotateHalf(as32(x[i*heads*D:(i+1)*heads*D]), as32(c), as32(s), heads, D, back)
			continue
		}
		for hd := 0; hd < heads; hd++ {
			v := x[(i*heads+hd)*D : (i*heads+hd+1)*D]
			for j := 0; j < h; j++ {
				x1, x2, sj := v[j], v[j+h], s[j]
				if back {
					sj = -sj
				}
				v[j] = x1*c[j] - x2*sj
				v[j+h] = x2*c[j] + x1*sj
			}
		}
	}
}

// RoPEBackward turns ∂L/∂(rotated x) into ∂L/∂x in place: the transpose of
// the forward rotation, i.e. a rotation by the opposite angle.
// dx [B·T, heads·D]; cos, sin [T, D/2].
func RoPEBackward[F Float](dx, cos, sin []F, N, T, heads, D int) {
	parallelChunks(N, rowChunk(heads*D), func(i0, i1 int) { ropeRows(dx, cos, sin, i0, i1, T, heads, D, true) })
}

// SwiGLUForward computes out = silu(g)·u with silu(g) = g·σ(g), leaving
// σ(g) in sig for the backward when sig is not nil. g, u, out, sig [n].
func SwiGLUForward[F Float](out, sig, g, u []F) {
	parallelChunks(len(g), 1<<14, func(i0, i1 int) {
		s := chunkOrNil(sig, i0, i1)
		if is32[F]() {
			tensor.SwiGLU(as32(out[i0:i1]), as32(s), as32(g[i0:i1]), as32(u[i0:i1]))
			return
		}
		if s == nil {
			s = make([]F, i1-i0)
		}
		sigmoidSlice(s, g[i0:i1])
		for i := i0; i < i1; i++ {
			out[i] = g[i] * s[i-i0] * u[i]
		}
	})
}

// chunkOrNil returns x[i0:i1], or nil for a nil x.
func chunkOrNil[F Float](x []F, i0, i1 int) []F {
	if x == nil {
		return nil
	}
	return x[i0:i1]
}

// SwiGLUBackward writes dg and du given dout = ∂L/∂out and the saved σ(g):
// du = dout·g·σ(g), dg = dout·u·σ(g)·(1 + g·(1 − σ(g))). With sig nil,
// σ(g) is recomputed (the same values SwiGLUForward gives): two fewer
// streams through memory than saving it.
// dg, du, dout, g, u, sig [n]; dg may alias sig.
func SwiGLUBackward[F Float](dg, du, dout, g, u, sig []F) {
	parallelChunks(len(g), 1<<14, func(i0, i1 int) {
		sg := chunkOrNil(sig, i0, i1)
		if is32[F]() {
			tensor.SwiGLUGrad(as32(dg[i0:i1]), as32(du[i0:i1]), as32(dout[i0:i1]), as32(g[i0:i1]), as32(u[i0:i1]), as32(sg))
			return
		}
		if sg == nil {
			sg = make([]F, i1-i0)
			sigmoidSlice(sg, g[i0:i1])
		}
		for i := i0; i < i1; i++ {
			gv, s := g[i], sg[i-i0]
			uv, d := u[i], dout[i]
			du[i] = d * gv * s
			dg[i] = d * uv * s * (1 + gv*(1-s))
		}
	})
}

// ResidualForward computes out = a + b. out may alias a or b.
func ResidualForward[F Float](out, a, b []F) {
	parallelChunks(len(out), 1<<14, func(i0, i1 int) {
		if is32[F]() {
			tensor.AddTo(as32(out[i0:i1]), as32(a[i0:i1]), as32(b[i0:i1]))
			return
		}
		for i := i0; i < i1; i++ {
			out[i] = a[i] + b[i]
		}
	})
}

// is32 reports whether F is float32 (the training path).
func is32[F Float]() bool {
	var z F
	_, ok := any(z).(float32)
	return ok
}

// as32 reinterprets x as []float32; only valid when is32[F]().
func as32[F Float](x []F) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// expSub sets x[i] = e^(x[i] − m) and returns Σ x[i] summed in float64:
// for float32 in one pass (tensor.ExpSubSum: each element a pure function
// of x[i] and m, the sum in an order fixed by the length, so results do not
// depend on the row's position or the thread), for float64 in index order.
func expSub[F Float](x []F, m F) float64 {
	if is32[F]() {
		return tensor.ExpSubSum(as32(x), float32(m))
	}
	var s float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = F(e)
		s += e
	}
	return s
}

// sigmoidSlice sets sig[i] = 1/(1 + e^−g[i]).
func sigmoidSlice[F Float](sig, g []F) {
	if is32[F]() {
		tensor.Sigmoid(as32(sig), as32(g))
		return
	}
	for i, v := range g {
		sig[i] = F(1 / (1 + math.Exp(-float64(v))))
	}
}

// parallelChunks splits [0, n) into chunks of the given size and runs f on
// each, on GOMAXPROCS goroutines. The split depends only on n and chunk,
// and chunks write disjoint outputs, so results do not depend on the
// thread count or on timing.
func parallelChunks(n, chunk int, f func(i0, i1 int)) {
	if n <= chunk {
		if n > 0 {
			f(0, n)
		}
		return
	}
	nc := (n + chunk - 1) / chunk
	parallelFor(nc, runtime.GOMAXPROCS(0), func(c, _ int) { f(c*chunk, min(n, (c+1)*chunk)) })
}
