package nn

import (
	"math"

	"github.com/gantryml/gantry/internal/tensor"
)

// LMHeadRows returns how many rows LMHeadCrossEntropy processes at once so
// that one block of logits, rows×V, stays near budget elements (at least
// one row). The full [rows, V] logits are never materialised beyond that.
func LMHeadRows(V, budget int) int {
	return max(1, min(budget/max(V, 1), 1024))
}

// LMHeadCrossEntropy computes the LM head and the cross-entropy loss for M
// loss-bearing rows, block by block, and when dx is not nil its gradient:
//
//	logits = x·Wᵀ            x [M, C], W [V, C], block of logits [rows, V]
//	loss   = Σ_i lse(logits_i) − logits_i[targets[i]]
//	dx     = scale·(softmax(logits) − onehot(targets))·W   [M, C], overwritten
//
// logits is scratch of rows·V elements, rows = len(logits)/V ≥ 1. Each block
// is finished (loss, gradient) before the next one starts, so no logit is
// computed twice. The loss is summed in float64 in row order; correct counts
// the rows whose first arg-max equals the target. Targets must lie in [0, V).
func LMHeadCrossEntropy[F Float](dx, x, w []F, targets []int32, M, C, V int, scale F, logits []F) (loss float64, correct int) {
	return lmHeadCrossEntropy(dx, x, matRef[F]{f: w}, targets, M, C, V, scale, logits)
}

func lmHeadCrossEntropy[F Float](dx, x []F, w matRef[F], targets []int32, M, C, V int, scale F, logits []F) (loss float64, correct int) {
	rows := len(logits) / V
	// Per-row results, summed in row order after each parallel block.
	rowLoss := make([]float64, rows)
	rowSum := make([]float64, rows)
	hit := make([]bool, rows)
	for i0 := 0; i0 < M; i0 += rows {
		n := min(rows, M-i0)
		w.mulNT(n, V, C, 1, x[i0*C:], C, 0, logits, V)
		parallelChunks(n, 1, func(r0, r1 int) {
			for r := r0; r < r1; r++ {
				rowLoss[r], rowSum[r], hit[r] = crossEntropyExpRow(logits[r*V:(r+1)*V], int(targets[i0+r]))
			}
		})
		for r := 0; r < n; r++ {
			loss += rowLoss[r]
			if hit[r] {
				correct++
			}
		}
		if dx == nil {
			continue
		}
		// dx = (E·W)·scale/Σ − scale·W[target], with E the unnormalised
		// exponentials: normalising the C-wide result instead of the V-wide
		// row saves a pass over the logits.
		w.mulNN(n, C, V, 1, logits, V, 0, dx[i0*C:], C)
		parallelChunks(n, rowChunk(C), func(r0, r1 int) {
			wt := make([]F, C)
			for r := r0; r < r1; r++ {
				d := dx[(i0+r)*C : (i0+r+1)*C]
				w.rowInto(wt, int(targets[i0+r]), C)
				inv := scale / F(rowSum[r])
				for j, v := range wt {
					d[j] = d[j]*inv - scale*v
				}
			}
		})
	}
	return loss, correct
}

// crossEntropyExpRow returns −log softmax(l)[tgt], Σ e^(l − max(l)) and
// whether tgt is l's first arg-max; it overwrites l with e^(l − max(l)).
func crossEntropyExpRow[F Float](l []F, tgt int) (float64, float64, bool) {
	m, arg := rowMaxIndex(l)
	lt := l[tgt]
	sum := expSub(l, m)
	return float64(m) + math.Log(sum) - float64(lt), sum, arg == tgt
}

// softmaxCrossEntropyRow returns −log softmax(l)[tgt] and whether tgt is
// l's first arg-max; it overwrites l: with scale·(softmax(l) − onehot(tgt))
// when grad, else with e^(l − max).
func softmaxCrossEntropyRow[F Float](l []F, tgt int, grad bool, scale F) (float64, bool) {
	loss, sum, hit := crossEntropyExpRow(l, tgt)
	if grad {
		inv := scale / F(sum)
		for j := range l {
			l[j] *= inv
		}
		l[tgt] -= scale
	}
	return loss, hit
}

// rowMaxIndex returns the largest element of l and its first index
// (tensor.MaxIndex for float32).
func rowMaxIndex[F Float](l []F) (F, int) {
	if is32[F]() {
		m, arg := tensor.MaxIndex(as32(l))
		return F(m), arg
	}
	m, arg := l[0], 0
	for j, v := range l {
		if v > m {
			m, arg = v, j
		}
	}
	return m, arg
}
