package nn

import "math"

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
	rows := len(logits) / V
	for i0 := 0; i0 < M; i0 += rows {
		n := min(rows, M-i0)
		gemm(false, true, n, V, C, 1, x[i0*C:], C, w, C, 0, logits, V)
		for r := 0; r < n; r++ {
			l := logits[r*V : (r+1)*V]
			tgt := int(targets[i0+r])
			m, arg := l[0], 0
			for j, v := range l {
				if v > m {
					m, arg = v, j
				}
			}
			if arg == tgt {
				correct++
			}
			lt := l[tgt]
			var sum float64
			for j, v := range l {
				e := expF(v - m)
				l[j] = e
				sum += float64(e)
			}
			loss += float64(m) + math.Log(sum) - float64(lt)
			if dx != nil {
				inv := scale / F(sum)
				for j := range l {
					l[j] *= inv
				}
				l[tgt] -= scale
			}
		}
		if dx != nil {
			gemm(false, false, n, C, V, 1, logits, V, w, C, 0, dx[i0*C:], C)
		}
	}
	return loss, correct
}
