package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vfusedLengths covers empty, sub-vector, whole-vector and tail lengths.
var vfusedLengths = []int{0, 1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 257, 1000, 4099}

func fusedRand(rng *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * scale
	}
	return x
}

func fusedMask(rng *rand.Rand, n int) []uint64 {
	m := make([]uint64, (n+63)/64)
	for i := range m {
		m[i] = rng.Uint64()
	}
	return m
}

func sameBits(t *testing.T, what string, n int, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s n=%d: [%d] = %v (%#x), want %v (%#x)", what, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func TestDropoutScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const scale = float32(1 / (1 - 0.1))
	for _, n := range vfusedLengths {
		x := fusedRand(rng, n+1, 1)
		x[0] = float32(math.Inf(1))
		mask := fusedMask(rng, n)
		want := make([]float32, n)
		for i := range want { // the definition, element by element
			if mask[i/64]&(1<<(i%64)) != 0 {
				want[i] = x[i] * scale
			} else {
				want[i] = x[i] * 0
			}
		}
		got := append([]float32(nil), x...) // the element past n must stay
		DropoutScale(got[:n], x[:n], mask, scale)
		sameBits(t, "DropoutScale", n, got[:n], want)
		if got[n] != x[n] {
			t.Fatalf("DropoutScale n=%d wrote past the end", n)
		}
		ref := make([]float32, n)
		dropoutScaleGo(ref, x[:n], mask, scale)
		sameBits(t, "dropoutScaleGo", n, ref, want)

		dx := fusedRand(rng, n+1, 1)
		want2 := make([]float32, n)
		for i := range want2 {
			p := float32(0)
			if mask[i/64]&(1<<(i%64)) != 0 {
				p = x[i] * scale
			} else {
				p = x[i] * 0
			}
			want2[i] = dx[i] + p
		}
		ref2 := append([]float32(nil), dx[:n]...)
		dropoutScaleAddGo(ref2, x[:n], mask, scale)
		sameBits(t, "dropoutScaleAddGo", n, ref2, want2)
		last := dx[n]
		DropoutScaleAdd(dx[:n], x[:n], mask, scale)
		sameBits(t, "DropoutScaleAdd", n, dx[:n], want2)
		if dx[n] != last {
			t.Fatalf("DropoutScaleAdd n=%d wrote past the end", n)
		}
	}
}

// kernelsUnderTest are the kernels of this CPU; the fused functions must
// agree with AVX-512 where the exp is involved bit for bit on the AVX2 and
// AVX-512 kernels, and within the exp's bound on the portable one.
func kernelsUnderTest() []Kernel { return AvailableKernels() }

func TestExpSubSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range vfusedLengths {
		x := fusedRand(rng, n+1, 8)
		if n > 3 {
			x[1], x[2], x[3] = -200, 90, float32(math.Inf(-1))
		}
		var m float32 = 3
		var first []float32
		var firstSum float64
		for _, k := range kernelsUnderTest() {
			got := append([]float32(nil), x...)
			s := expSubSum(k, got[:n], m)
			if got[n] != x[n] {
				t.Fatalf("%v n=%d wrote past the end", k, n)
			}
			// Against float64: each element within the exp's bound, the sum
			// exact to float64 rounding of the float32 terms.
			var ref, abs float64
			for i := 0; i < n; i++ {
				e := math.Exp(float64(x[i] - m))
				if !closeULP(got[i], e, 2) {
					t.Fatalf("%v n=%d: exp(%v) = %v, want %v", k, n, x[i]-m, got[i], e)
				}
				ref += float64(got[i])
				abs += math.Abs(float64(got[i]))
			}
			if math.Abs(s-ref) > 1e-14*abs+1e-300 {
				t.Fatalf("%v n=%d: sum %v, want %v", k, n, s, ref)
			}
			if k == KernelGeneric {
				continue // last-bit exp differences allowed
			}
			if first == nil {
				first, firstSum = got, s
				continue
			}
			sameBits(t, "ExpSubSum "+k.String(), n, got, first)
			if s != firstSum {
				t.Fatalf("%v n=%d: sum %v, other kernel %v", k, n, s, firstSum)
			}
		}
	}
}

// closeULP reports whether got is within u float32 ulps of want.
func closeULP(got float32, want float64, u int) bool {
	w := float32(want)
	if got == w {
		return true
	}
	if math.IsInf(want, 0) || math.IsNaN(want) {
		return false
	}
	d := int64(math.Float32bits(got)) - int64(math.Float32bits(w))
	return d >= -int64(u) && d <= int64(u)
}

func TestSum16Order(t *testing.T) {
	// The lane order is fixed: a length-17 input whose terms cancel only
	// in the documented order.
	x := make([]float32, 17)
	x[0], x[1], x[8] = 1e30, 1, -1e30 // a running sum would give 0
	var s sum16
	for i, v := range x {
		s[i&15] += float64(v)
	}
	if got := s.total(); got != 1 {
		t.Fatalf("sum16 = %v, want 1", got)
	}
	if got := SumSquares([]float32{3, 4}); got != 25 {
		t.Fatalf("SumSquares = %v", got)
	}
}

func TestExpSubGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range vfusedLengths {
		s := fusedRand(rng, n+1, 4)
		d := fusedRand(rng, n+1, 1)
		var l, c float32 = 2.5, 0.3
		var firstP, firstD []float32
		for _, k := range kernelsUnderTest() {
			p, dp := append([]float32(nil), s...), append([]float32(nil), d...)
			expSubGrad(k, p[:n], dp[:n], l, c)
			if p[n] != s[n] || dp[n] != d[n] {
				t.Fatalf("%v n=%d wrote past the end", k, n)
			}
			for i := 0; i < n; i++ {
				e := math.Exp(float64(s[i] - l))
				if !closeULP(p[i], e, 2) {
					t.Fatalf("%v n=%d: p[%d] = %v, want %v", k, n, i, p[i], e)
				}
				if want := p[i] * (d[i] - c); dp[i] != want {
					t.Fatalf("%v n=%d: dp[%d] = %v, want %v", k, n, i, dp[i], want)
				}
			}
			if k == KernelGeneric {
				continue
			}
			if firstP == nil {
				firstP, firstD = p, dp
				continue
			}
			sameBits(t, "ExpSubGrad p "+k.String(), n, p, firstP)
			sameBits(t, "ExpSubGrad dp "+k.String(), n, dp, firstD)
		}
	}
}

func TestMaxIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, n := range vfusedLengths[1:] {
		for trial := 0; trial < 6; trial++ {
			x := fusedRand(rng, n, 1)
			switch trial {
			case 1: // ties: the first occurrence wins
				for i := range x {
					x[i] = float32(rng.IntN(3))
				}
			case 2:
				x[rng.IntN(n)] = inf
			case 3:
				for i := range x {
					x[i] = -inf
				}
			case 4:
				x[0] = nan
				x[n-1] = nan
			case 5: // the maximum in the tail
				x[n-1] = 100
			}
			m, arg := MaxIndex(x)
			wm, warg := maxIndexGo(x)
			// The definition: first index of the largest non-NaN element.
			dm, darg := float32(0), -1
			for i, v := range x {
				if v == v && (darg < 0 || v > dm) {
					dm, darg = v, i
				}
			}
			if darg < 0 {
				dm, darg = x[0], 0
			}
			if math.Float32bits(wm) != math.Float32bits(dm) || warg != darg {
				t.Fatalf("maxIndexGo n=%d trial %d = %v, %d; want %v, %d", n, trial, wm, warg, dm, darg)
			}
			if math.Float32bits(m) != math.Float32bits(dm) || arg != darg {
				t.Fatalf("MaxIndex n=%d trial %d = %v, %d; want %v, %d", n, trial, m, arg, dm, darg)
			}
		}
	}
}

func TestSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range vfusedLengths {
		g := fusedRand(rng, n+1, 6)
		u := fusedRand(rng, n+1, 1)
		if n > 2 {
			g[0], g[1] = -120, 100
		}
		var firstO, firstS []float32
		for _, k := range kernelsUnderTest() {
			out := append([]float32(nil), u...)
			sig := append([]float32(nil), g...)
			swiglu(k, out[:n], sig[:n], g[:n], u[:n])
			if out[n] != u[n] || sig[n] != g[n] {
				t.Fatalf("%v n=%d wrote past the end", k, n)
			}
			ref := make([]float32, n)
			vmathKernel(k, ref, g[:n], modeSigmoid)
			sameBits(t, "SwiGLU sig "+k.String(), n, sig[:n], ref)
			for i := 0; i < n; i++ {
				if want := g[i] * ref[i] * u[i]; math.Float32bits(out[i]) != math.Float32bits(want) {
					t.Fatalf("%v n=%d: out[%d] = %v, want %v", k, n, i, out[i], want)
				}
				if s := 1 / (1 + math.Exp(-float64(g[i]))); !closeULP(sig[i], s, 2) && math.Abs(float64(sig[i])-s) > 1e-44 {
					t.Fatalf("%v n=%d: σ(%v) = %v, want %v", k, n, g[i], sig[i], s)
				}
			}
			if k == KernelGeneric {
				continue
			}
			if firstO == nil {
				firstO, firstS = out, sig
				continue
			}
			sameBits(t, "SwiGLU out "+k.String(), n, out, firstO)
			sameBits(t, "SwiGLU sig "+k.String(), n, sig, firstS)
		}
	}
}

func TestSwiGLUGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range vfusedLengths {
		g, u, d := fusedRand(rng, n+1, 3), fusedRand(rng, n+1, 1), fusedRand(rng, n+1, 1)
		sig := make([]float32, n+1)
		Sigmoid(sig, g)
		wantG, wantU := make([]float32, n), make([]float32, n)
		swigluGradGo(wantG, wantU, d[:n], g[:n], u[:n], sig[:n])
		for i := range wantG { // the Go reference against float64
			gv, s, uv, dv := float64(g[i]), float64(sig[i]), float64(u[i]), float64(d[i])
			if e := dv * gv * s; math.Abs(float64(wantU[i])-e) > 1e-6*math.Abs(e)+1e-30 {
				t.Fatalf("du[%d] = %v, want %v", i, wantU[i], e)
			}
			// Bound from the magnitudes: 1 + g·(1 − s) may cancel.
			if e, mag := dv*uv*s*(1+gv*(1-s)), math.Abs(dv*uv*s)*(1+math.Abs(gv)*(1-s)); math.Abs(float64(wantG[i])-e) > 1e-6*mag+1e-30 {
				t.Fatalf("dg[%d] = %v, want %v", i, wantG[i], e)
			}
		}
		du := append([]float32(nil), u...)
		dg := append([]float32(nil), sig...) // dg aliases sig
		SwiGLUGrad(dg[:n], du[:n], d[:n], g[:n], u[:n], dg[:n])
		sameBits(t, "SwiGLUGrad dg", n, dg[:n], wantG)
		sameBits(t, "SwiGLUGrad du", n, du[:n], wantU)
		if dg[n] != sig[n] || du[n] != u[n] {
			t.Fatalf("n=%d wrote past the end", n)
		}
	}
}

func TestSumSquaresScaleMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range vfusedLengths {
		x, w := fusedRand(rng, n+1, 3), fusedRand(rng, n+1, 1)
		var s sum16
		var ref, abs float64
		for i, v := range x[:n] {
			s[i&15] += float64(v) * float64(v)
			ref += float64(v) * float64(v)
		}
		abs = ref
		got := SumSquares(x[:n])
		if want := s.total(); got != want {
			t.Fatalf("SumSquares n=%d = %v, want %v (sum16)", n, got, want)
		}
		if math.Abs(got-ref) > 1e-14*abs {
			t.Fatalf("SumSquares n=%d = %v, float64 %v", n, got, ref)
		}
		const r = float32(0.37)
		out := append([]float32(nil), w...)
		ScaleMul(out[:n], x[:n], r, w[:n])
		for i := 0; i < n; i++ {
			if want := x[i] * r * w[i]; math.Float32bits(out[i]) != math.Float32bits(want) {
				t.Fatalf("ScaleMul n=%d: [%d] = %v, want %v", n, i, out[i], want)
			}
		}
		if out[n] != w[n] {
			t.Fatalf("ScaleMul n=%d wrote past the end", n)
		}
	}
}

func TestFusedPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"DropoutScale short mask": func() { DropoutScale(make([]float32, 65), make([]float32, 65), make([]uint64, 1), 1) },
		"DropoutScaleAdd lengths": func() { DropoutScaleAdd(make([]float32, 3), make([]float32, 4), make([]uint64, 1), 1) },
		"ExpSubGrad lengths":      func() { ExpSubGrad(make([]float32, 3), make([]float32, 4), 0, 0) },
		"MaxIndex empty":          func() { MaxIndex(nil) },
		"SwiGLU lengths":          func() { SwiGLU(make([]float32, 3), make([]float32, 3), make([]float32, 3), make([]float32, 2)) },
		"ScaleMul lengths":        func() { ScaleMul(make([]float32, 3), make([]float32, 3), 1, make([]float32, 2)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func BenchmarkFused(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 1 << 16
	x, y, z := fusedRand(rng, n, 1), fusedRand(rng, n, 1), fusedRand(rng, n, 1)
	mask := fusedMask(rng, n)
	b.Run("DropoutScale", func(b *testing.B) {
		b.SetBytes(8 * n)
		for b.Loop() {
			DropoutScale(y, x, mask, 1.1)
		}
	})
	b.Run("ExpSubSum256", func(b *testing.B) {
		b.SetBytes(4 * 256)
		for b.Loop() {
			copy(y[:256], x[:256])
			ExpSubSum(y[:256], 1)
		}
	})
	b.Run("SwiGLU", func(b *testing.B) {
		b.SetBytes(16 * n)
		for b.Loop() {
			SwiGLU(z, y, x, x)
		}
	})
}

func TestAddSumSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, n := range vfusedLengths {
		x, y := fusedRand(rng, n+1, 2), fusedRand(rng, n+1, 2)
		want := make([]float32, n)
		var s sum16
		for i := range want {
			want[i] = x[i] + y[i]
			s[i&15] += float64(want[i]) * float64(want[i])
		}
		dst := append([]float32(nil), x...)
		got := AddSumSquares(dst[:n], dst[:n], y[:n]) // dst aliases x
		sameBits(t, "AddSumSquares", n, dst[:n], want)
		if ws := s.total(); got != ws || got != SumSquares(want) {
			t.Fatalf("AddSumSquares n=%d = %v, want %v", n, got, ws)
		}
		if dst[n] != x[n] {
			t.Fatalf("AddSumSquares n=%d wrote past the end", n)
		}
		dst2 := append([]float32(nil), y...)
		AddTo(dst2[:n], x[:n], dst2[:n])
		sameBits(t, "AddTo", n, dst2[:n], want)
		if dst2[n] != y[n] {
			t.Fatalf("AddTo n=%d wrote past the end", n)
		}
	}
}

func TestRMSNormGradRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, n := range vfusedLengths {
		d, x, w, dx0 := fusedRand(rng, n+1, 1), fusedRand(rng, n+1, 2), fusedRand(rng, n+1, 1), fusedRand(rng, n+1, 1)
		const r = float32(0.61)
		// The documented steps.
		var s sum16
		for j := 0; j < n; j++ {
			s[j&15] += float64(d[j] * w[j] * x[j] * r)
		}
		c := float32(s.total() / float64(max(n, 1)))
		want := append([]float32(nil), dx0[:n]...)
		var ref, mag float64 // c against float64
		for j := 0; j < n; j++ {
			want[j] += r * (d[j]*w[j] - x[j]*r*c)
			ref += float64(d[j]) * float64(w[j]) * float64(x[j]) * float64(r)
			mag += math.Abs(float64(d[j]) * float64(w[j]) * float64(x[j]) * float64(r))
		}
		if n > 0 && math.Abs(float64(c)-ref/float64(n)) > 1e-6*mag/float64(n) {
			t.Fatalf("n=%d: c = %v, float64 %v", n, c, ref/float64(n))
		}
		dx := append([]float32(nil), dx0...)
		RMSNormGradRow(dx[:n], d[:n], x[:n], w[:n], r)
		sameBits(t, "RMSNormGradRow", n, dx[:n], want)
		if dx[n] != dx0[n] {
			t.Fatalf("RMSNormGradRow n=%d wrote past the end", n)
		}
	}
}

func TestRotateHalf(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, D := range []int{4, 32, 64, 128} {
		for _, back := range []bool{false, true} {
			heads, h := 3, D/2
			x := fusedRand(rng, heads*D, 2)
			cos, sin := fusedRand(rng, h, 1), fusedRand(rng, h, 1)
			want := append([]float32(nil), x...)
			for hd := 0; hd < heads; hd++ {
				v := want[hd*D : (hd+1)*D]
				for j := 0; j < h; j++ {
					s := sin[j]
					if back {
						s = -s
					}
					x1, x2 := v[j], v[j+h]
					v[j] = x1*cos[j] - x2*s
					v[j+h] = x2*cos[j] + x1*s
				}
			}
			RotateHalf(x, cos, sin, heads, D, back)
			sameBits(t, "RotateHalf", D, x, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("odd D: no panic")
		}
	}()
	RotateHalf(make([]float32, 3), make([]float32, 2), make([]float32, 2), 1, 3, false)
}

func TestMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	if m := Max(nil); !math.IsInf(float64(m), -1) {
		t.Fatalf("Max(nil) = %v", m)
	}
	for _, n := range vfusedLengths[1:] {
		for trial := 0; trial < 4; trial++ {
			x := fusedRand(rng, n, 10)
			switch trial {
			case 1:
				x[n-1] = 1000 // in the tail
			case 2:
				x[0], x[n/2] = nan, inf
			case 3:
				for i := range x {
					x[i] = nan
				}
			}
			want := float32(math.Inf(-1))
			for _, v := range x {
				if v > want {
					want = v
				}
			}
			if got := Max(x); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("n=%d trial %d: Max = %v, want %v", n, trial, got, want)
			}
		}
	}
}

// TestSwiGLUWithoutSig: without the saved σ, SwiGLU and SwiGLUGrad give
// the same bits as with it (σ recomputed by the same kernel).
func TestSwiGLUWithoutSig(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	for _, n := range vfusedLengths {
		g, u, d := fusedRand(rng, n, 6), fusedRand(rng, n, 1), fusedRand(rng, n, 1)
		out, sig := make([]float32, n), make([]float32, n)
		SwiGLU(out, sig, g, u)
		out2 := make([]float32, n)
		SwiGLU(out2, nil, g, u)
		sameBits(t, "SwiGLU without sig", n, out2, out)
		dg, du := make([]float32, n), make([]float32, n)
		SwiGLUGrad(dg, du, d, g, u, sig)
		dg2, du2 := make([]float32, n), make([]float32, n)
		SwiGLUGrad(dg2, du2, d, g, u, nil)
		sameBits(t, "SwiGLUGrad dg without sig", n, dg2, dg)
		sameBits(t, "SwiGLUGrad du without sig", n, du2, du)
	}
}
