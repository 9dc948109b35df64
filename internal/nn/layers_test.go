package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randVec(r *rand.Rand, n int, scale float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = scale * r.NormFloat64()
	}
	return x
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// gradCheck compares the analytic gradient g of f with respect to x with
// central finite differences, at every element or at most 120 of them.
func gradCheck(t *testing.T, name string, x, g []float64, f func() float64) {
	t.Helper()
	const h = 1e-6
	idx := make([]int, 0, len(x))
	step := max(1, len(x)/120)
	for i := 0; i < len(x); i += step {
		idx = append(idx, i)
	}
	bad := 0
	for _, i := range idx {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		num := (fp - fm) / (2 * h)
		if d := math.Abs(num - g[i]); d > 1e-6+1e-5*math.Abs(num) {
			if bad < 5 {
				t.Errorf("%s[%d]: analytic %.10g, numeric %.10g", name, i, g[i], num)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements off", name, bad, len(idx))
	}
}

func TestRMSNormGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	N, C := 3, 8
	x, w, R := randVec(r, N*C, 1), randVec(r, C, 1), randVec(r, N*C, 1)
	out, rstd := make([]float64, N*C), make([]float64, N)
	f := func() float64 { RMSNormForward(out, rstd, x, w, N, C, 1e-5); return dot64(out, R) }
	f()
	dx, dw := make([]float64, N*C), make([]float64, C)
	RMSNormBackward(dx, dw, R, x, rstd, w, N, C)
	gradCheck(t, "dx", x, dx, f)
	gradCheck(t, "dw", w, dw, f)
	re := make([]float64, N*C)
	f()
	RMSNormRecompute(re, rstd, x, w, N, C)
	for i := range re {
		if re[i] != out[i] {
			t.Fatalf("recompute[%d] = %v, forward %v", i, re[i], out[i])
		}
	}
}

func TestLinearGrad(t *testing.T) {
	for _, bias := range []bool{false, true} {
		r := rand.New(rand.NewPCG(2, 1))
		N, in, out := 4, 5, 3
		x, w, R := randVec(r, N*in, 1), randVec(r, out*in, 1), randVec(r, N*out, 1)
		var b, db []float64
		if bias {
			b, db = randVec(r, out, 1), make([]float64, out)
		}
		y := make([]float64, N*out)
		f := func() float64 { LinearForward(y, x, w, b, N, in, out); return dot64(y, R) }
		dx, dw := make([]float64, N*in), make([]float64, out*in)
		LinearBackward(dx, dw, db, R, x, w, N, in, out)
		gradCheck(t, "dx", x, dx, f)
		gradCheck(t, "dw", w, dw, f)
		if bias {
			gradCheck(t, "db", b, db, f)
		}
	}
}

func TestLinearFloat32MatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	N, in, out := 7, 33, 17
	x, w, b := randVec(r, N*in, 1), randVec(r, out*in, 1), randVec(r, out, 1)
	y := make([]float64, N*out)
	LinearForward(y, x, w, b, N, in, out)
	y32 := make([]float32, N*out)
	LinearForward(y32, f32(x), f32(w), f32(b), N, in, out)
	for i := range y {
		if math.Abs(float64(y32[i])-y[i]) > 1e-4*(1+math.Abs(y[i])) {
			t.Fatalf("y[%d]: float32 %v, float64 %v", i, y32[i], y[i])
		}
	}
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func TestLoRAGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 1))
	N, in, out, rank := 4, 6, 5, 2
	x, a, b, R := randVec(r, N*in, 1), randVec(r, rank*in, 1), randVec(r, out*rank, 1), randVec(r, N*out, 1)
	y, u := make([]float64, N*out), make([]float64, N*rank)
	scale := 1.5
	f := func() float64 { clear(y); LoRAForward(y, u, x, a, b, scale, N, in, out, rank); return dot64(y, R) }
	f()
	dx, da, db, du := make([]float64, N*in), make([]float64, rank*in), make([]float64, out*rank), make([]float64, N*rank)
	LoRABackward(dx, da, db, du, R, x, u, a, b, scale, N, in, out, rank)
	gradCheck(t, "dx", x, dx, f)
	gradCheck(t, "dA", a, da, f)
	gradCheck(t, "dB", b, db, f)
}

func TestDropout(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 1))
	n, p := 20000, 0.25
	x, R := randVec(r, n, 1), randVec(r, n, 1)
	y := make([]float64, n)
	mask := make([]uint64, (n+63)/64)
	DropoutMask(mask, n, p, 42)
	f := func() float64 { DropoutForward(y, x, mask, p); return dot64(y, R) }
	f()
	kept := 0
	for i := range y {
		if y[i] != 0 {
			kept++
			if math.Abs(y[i]-x[i]/(1-p)) > 1e-12 {
				t.Fatalf("kept element %d scaled to %v, want %v", i, y[i], x[i]/(1-p))
			}
		}
	}
	if frac := float64(kept) / float64(n); math.Abs(frac-(1-p)) > 0.02 {
		t.Errorf("kept fraction %v, want about %v", frac, 1-p)
	}
	dx := make([]float64, n)
	DropoutBackward(dx, R, mask, p)
	gradCheck(t, "dx", x, dx, f)
	other := make([]float64, n)
	mask2 := make([]uint64, (n+63)/64)
	DropoutMask(mask2, n, p, 43)
	DropoutForward(other, x, mask2, p)
	same := true
	for i := range other {
		if (other[i] == 0) != (y[i] == 0) {
			same = false
		}
	}
	if same {
		t.Error("keys 42 and 43 gave the same mask")
	}
}

func TestIA3Grad(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	N, C := 3, 7
	x, l, R := randVec(r, N*C, 1), randVec(r, C, 1), randVec(r, N*C, 1)
	y := make([]float64, N*C)
	f := func() float64 { IA3Forward(y, x, l, N, C); return dot64(y, R) }
	dx, dl := make([]float64, N*C), make([]float64, C)
	IA3Backward(dx, dl, R, x, l, N, C)
	gradCheck(t, "dx", x, dx, f)
	gradCheck(t, "dl", l, dl, f)
}

func TestRoPEGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 1))
	B, T, heads, D := 2, 5, 3, 8
	N := B * T
	inv := []float64{1, 0.1, 0.01, 0.001}
	cos, sin := make([]float64, T*D/2), make([]float64, T*D/2)
	RoPETable(cos, sin, inv, T)
	x, R := randVec(r, N*heads*D, 1), randVec(r, N*heads*D, 1)
	y := make([]float64, len(x))
	f := func() float64 { copy(y, x); RoPEForward(y, cos, sin, N, T, heads, D); return dot64(y, R) }
	dx := append([]float64(nil), R...)
	RoPEBackward(dx, cos, sin, N, T, heads, D)
	gradCheck(t, "dx", x, dx, f)
	// rotate_half convention: position 1, frequency 1 rotates (x0, x4) by 1 radian.
	f()
	i := (1*heads + 0) * D
	want0 := x[i]*math.Cos(1) - x[i+4]*math.Sin(1)
	if math.Abs(y[i]-want0) > 1e-7 {
		t.Errorf("rotated x0 %v, want %v", y[i], want0)
	}
}

func TestSwiGLUGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	n := 30
	g, u, R := randVec(r, n, 2), randVec(r, n, 1), randVec(r, n, 1)
	y := make([]float64, n)
	sig := make([]float64, n)
	f := func() float64 { SwiGLUForward(y, sig, g, u); return dot64(y, R) }
	f()
	dg, du := make([]float64, n), make([]float64, n)
	SwiGLUBackward(dg, du, R, g, u, sig)
	gradCheck(t, "dg", g, dg, f)
	gradCheck(t, "du", u, du, f)
}

func TestEmbeddingGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 1))
	V, C := 5, 4
	tokens := []int32{3, 1, 3, 0}
	N := len(tokens)
	table, R := randVec(r, V*C, 1), randVec(r, N*C, 1)
	y := make([]float64, N*C)
	f := func() float64 { EmbeddingForward(y, tokens, table, N, C); return dot64(y, R) }
	dt := make([]float64, V*C)
	EmbeddingBackward(dt, R, tokens, N, C)
	gradCheck(t, "dtable", table, dt, f)
}

func TestAttentionGrad(t *testing.T) {
	cases := []struct {
		name        string
		B, T, H, KV int
		lengths     []int
		threads     int
		window      int
	}{
		{"mha one tile", 1, 6, 2, 2, nil, 1, 0},
		{"gqa two tiles padded", 2, 70, 4, 2, []int{70, 37}, 2, 0},
		{"mqa empty sequence", 2, 9, 3, 1, []int{9, 0}, 3, 0},
		{"sliding window 5", 2, 9, 2, 1, []int{9, 7}, 2, 5},
		{"sliding window 50 over tiles", 1, 140, 2, 2, []int{131}, 2, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(10, 1))
			D := 4
			N := c.B * c.T
			s := AttentionShape{B: c.B, T: c.T, H: c.H, KV: c.KV, D: D, Lengths: c.lengths, Threads: c.threads, Window: c.window}
			q, k, v := randVec(r, N*c.H*D, 1), randVec(r, N*c.KV*D, 1), randVec(r, N*c.KV*D, 1)
			R := randVec(r, N*c.H*D, 1)
			out, lse := make([]float64, N*c.H*D), make([]float64, c.B*c.H*c.T)
			scratch := make([]float64, AttentionScratch(s))
			f := func() float64 { AttentionForward(out, lse, q, k, v, s, scratch); return dot64(out, R) }
			f()
			ref := naiveAttention(q, k, v, s)
			for i := range ref {
				if math.Abs(ref[i]-out[i]) > 1e-12 {
					t.Fatalf("out[%d] = %v, naive %v", i, out[i], ref[i])
				}
			}
			dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
			AttentionBackward(dq, dk, dv, R, q, k, v, out, lse, s, scratch)
			gradCheck(t, "dq", q, dq, f)
			gradCheck(t, "dk", k, dk, f)
			gradCheck(t, "dv", v, dv, f)
		})
	}
}

// naiveAttention is the textbook version: full score matrix, −inf mask
// (causal, and the sliding window when set).
func naiveAttention(q, k, v []float64, s AttentionShape) []float64 {
	B, T, H, KV, D := s.B, s.T, s.H, s.KV, s.D
	out := make([]float64, B*T*H*D)
	for b := 0; b < B; b++ {
		L := s.length(b)
		for h := 0; h < H; h++ {
			kh := h / (H / KV)
			for t := 0; t < L; t++ {
				qi := q[(b*T+t)*H*D+h*D:][:D]
				sc := make([]float64, t+1)
				m := math.Inf(-1)
				for j := 0; j <= t; j++ {
					sc[j] = dot64(qi, k[(b*T+j)*KV*D+kh*D:][:D]) / math.Sqrt(float64(D))
					if s.Window > 0 && t-j >= s.Window {
						sc[j] = math.Inf(-1)
					}
					m = math.Max(m, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - m)
					sum += sc[j]
				}
				o := out[(b*T+t)*H*D+h*D:][:D]
				for j := range sc {
					for d := 0; d < D; d++ {
						o[d] += sc[j] / sum * v[(b*T+j)*KV*D+kh*D+d]
					}
				}
			}
		}
	}
	return out
}

func TestLMHeadCrossEntropyGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 1))
	M, C, V := 5, 6, 11
	x, w := randVec(r, M*C, 1), randVec(r, V*C, 1)
	targets := []int32{0, 10, 3, 3, 7}
	logits := make([]float64, 2*V) // two rows per block: three blocks
	f := func() float64 {
		loss, _ := LMHeadCrossEntropy(nil, x, w, targets, M, C, V, 1, logits)
		return loss
	}
	// Reference loss from full logits.
	var want float64
	for i := 0; i < M; i++ {
		l := make([]float64, V)
		m := math.Inf(-1)
		for j := range l {
			l[j] = dot64(x[i*C:(i+1)*C], w[j*C:(j+1)*C])
			m = math.Max(m, l[j])
		}
		var s float64
		for _, v := range l {
			s += math.Exp(v - m)
		}
		want += m + math.Log(s) - l[targets[i]]
	}
	if got := f(); math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Fatalf("loss %v, want %v", got, want)
	}
	dx := make([]float64, M*C)
	scale := 0.5
	loss, _ := LMHeadCrossEntropy(dx, x, w, targets, M, C, V, scale, logits)
	if math.Abs(loss-want) > 1e-12*math.Abs(want) {
		t.Fatalf("loss with gradient %v, want %v", loss, want)
	}
	for i := range dx {
		dx[i] /= scale
	}
	gradCheck(t, "dx", x, dx, f)
}

// TestExpSub checks the float32 softmax numerator against float64 math.Exp.
func TestExpSub(t *testing.T) {
	var x []float32
	for v := float32(-150); v < 30; v += 0.01173 {
		x = append(x, v)
	}
	want := make([]float64, len(x))
	var wantSum float64
	for i, v := range x {
		want[i] = math.Exp(float64(v - 20)) // the argument as float32 rounds it
		wantSum += want[i]
	}
	sum := expSub(x, 20)
	for i, v := range x {
		if math.Abs(float64(v)-want[i]) > 3e-7*want[i]+1e-44 {
			t.Fatalf("element %d: %v, want %v", i, v, want[i])
		}
	}
	if math.Abs(sum-wantSum) > 1e-6*wantSum {
		t.Errorf("sum %v, want %v", sum, wantSum)
	}
}

// TestDropoutMaskStatistics checks the keep rate for several p and that
// neighbouring bits are independent (pairs kept at rate (1−p)²).
func TestDropoutMaskStatistics(t *testing.T) {
	const n = 1 << 18
	mask := make([]uint64, n/64)
	for _, p := range []float64{0.05, 0.1, 0.5, 0.9} {
		DropoutMask(mask, n, p, 7)
		kept, pairs := 0, 0
		bit := func(i int) bool { return mask[i>>6]&(1<<(i&63)) != 0 }
		for i := 0; i < n; i++ {
			if bit(i) {
				kept++
				if i+1 < n && bit(i+1) {
					pairs++
				}
			}
		}
		q := 1 - p
		if f := float64(kept) / n; math.Abs(f-q) > 0.005 {
			t.Errorf("p=%v: kept %v, want %v", p, f, q)
		}
		if f := float64(pairs) / (n - 1); math.Abs(f-q*q) > 0.005 {
			t.Errorf("p=%v: neighbouring pairs kept %v, want %v", p, f, q*q)
		}
	}
}

// TestAttentionSmallScratch runs attention with scratch for one goroutine
// while asking for four: it must use one, not index past the scratch.
func TestAttentionSmallScratch(t *testing.T) {
	s := AttentionShape{B: 2, T: 5, H: 2, KV: 1, D: 4, Threads: 1}
	N := s.B * s.T
	scratch := make([]float32, AttentionScratch(s))
	s.Threads = 4
	x := make([]float32, N*s.H*s.D)
	kv := make([]float32, N*s.KV*s.D)
	for i := range x {
		x[i] = float32(i%7) * 0.1
	}
	for i := range kv {
		kv[i] = float32(i%5) * 0.1
	}
	out, lse := make([]float32, len(x)), make([]float32, s.B*s.H*s.T)
	AttentionForward(out, lse, x, kv, kv, s, scratch)
	dq, dk, dv := make([]float32, len(x)), make([]float32, len(kv)), make([]float32, len(kv))
	AttentionBackward(dq, dk, dv, x, x, kv, kv, out, lse, s, scratch)
}
