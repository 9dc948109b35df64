package nn

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/gantryml/gantry/internal/tensor"
)

// The float32 layer functions run the fused kernels of tensor; these tests
// hold them to the scalar code they replaced, bit for bit where the order
// of operations is unchanged (dropout, SwiGLU, RMSNorm's output).

func randF32(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func sameF32(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestDropoutBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const p = 0.1
	// Several parallel chunks (1<<14) and a tail that is not a multiple of 64.
	for _, n := range []int{1, 63, 64, 65, 1000, 3<<14 + 77} {
		x, dx0 := randF32(rng, n), randF32(rng, n)
		mask := make([]uint64, (n+63)/64)
		DropoutMask(mask, n, p, 99)
		// The scalar code of DropoutForward/DropoutBackward before the
		// kernels, element by element.
		tbl := [2]float32{0, float32(1 / (1 - p))}
		wantY, wantDx := make([]float32, n), append([]float32(nil), dx0...)
		for i := range x {
			b := mask[i/64] >> (i % 64) & 1
			wantY[i] = x[i] * tbl[b]
			wantDx[i] += float32(x[i] * tbl[b])
		}
		y := make([]float32, n)
		DropoutForward(y, x, mask, p)
		sameF32(t, "DropoutForward", y, wantY)
		DropoutBackward(dx0, x, mask, p)
		sameF32(t, "DropoutBackward", dx0, wantDx)
		DropoutForward(x, x, mask, p) // in place
		sameF32(t, "DropoutForward in place", x, wantY)
	}
}

// TestDropoutMaskGolden pins the mask: checkpoints replay it, so it must
// never change.
func TestDropoutMaskGolden(t *testing.T) {
	for _, n := range []int{150, 64*1500 + 37} { // one chunk; several, vectors and a tail
		mask := make([]uint64, (n+63)/64)
		DropoutMask(mask, n, 0.1, 0x1234)
		want := dropoutMaskScalar(n, 0.1, 0x1234)
		for i := range want {
			if mask[i] != want[i] {
				t.Fatalf("n=%d: word %d = %#x, want %#x", n, i, mask[i], want[i])
			}
		}
	}
}

// dropoutMaskScalar is DropoutMask's definition bit by bit: word w's
// wyrand stream seeded by splitmix64(key + w·φ), each 64-bit draw giving
// four 15-bit lanes compared with round(p·32768).
func dropoutMaskScalar(n int, p float64, key uint64) []uint64 {
	thresh := min(uint64(math.Round(p*32768)), 32767)
	mask := make([]uint64, (n+63)/64)
	for i := 0; i < n; i++ {
		w := i / 64
		z := key + uint64(w)*0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		s := z ^ (z >> 31)
		q := (i % 64) / 4
		var r uint64
		for j := 0; j <= q; j++ {
			s += 0xa0761d6478bd642f
			hi, lo := mul64(s, s^0xe7037ed1a0b428db)
			r = hi ^ lo
		}
		lane := r >> (16 * (i % 4)) & 0x7fff
		if lane >= thresh {
			mask[w] |= 1 << (i % 64)
		}
	}
	return mask
}

func mul64(a, b uint64) (hi, lo uint64) {
	const m32 = 1<<32 - 1
	a0, a1, b0, b1 := a&m32, a>>32, b&m32, b>>32
	w0 := a0 * b0
	t := a1*b0 + w0>>32
	w1, w2 := t&m32, t>>32
	w1 += a0 * b1
	return a1*b1 + w2 + w1>>32, a * b
}

func TestSwiGLUBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 2<<14 + 33
	g, u, d := randF32(rng, n), randF32(rng, n), randF32(rng, n)
	wantSig, wantOut := make([]float32, n), make([]float32, n)
	tensor.Sigmoid(wantSig, g)
	for i := range g {
		wantOut[i] = g[i] * wantSig[i] * u[i]
	}
	out, sig := make([]float32, n), make([]float32, n)
	SwiGLUForward(out, sig, g, u)
	sameF32(t, "SwiGLUForward sig", sig, wantSig)
	sameF32(t, "SwiGLUForward out", out, wantOut)
	wantDg, wantDu := make([]float32, n), make([]float32, n)
	for i := range g {
		gv, s, uv, dv := g[i], sig[i], u[i], d[i]
		wantDu[i] = dv * gv * s
		wantDg[i] = dv * uv * s * (1 + gv*(1-s))
	}
	out2 := make([]float32, n)
	SwiGLUForward(out2, nil, g, u) // σ not kept
	sameF32(t, "SwiGLUForward without sig", out2, wantOut)
	dg2, du2 := make([]float32, n), make([]float32, n)
	SwiGLUBackward(dg2, du2, d, g, u, nil) // σ recomputed
	sameF32(t, "SwiGLUBackward dg without sig", dg2, wantDg)
	sameF32(t, "SwiGLUBackward du without sig", du2, wantDu)
	du := make([]float32, n)
	SwiGLUBackward(sig, du, d, g, u, sig) // dg aliases sig
	sameF32(t, "SwiGLUBackward dg", sig, wantDg)
	sameF32(t, "SwiGLUBackward du", du, wantDu)
	// float64 without sig: the same definition as with it.
	f := fromF32[float64]
	g64, u64, d64 := f(g), f(u), f(d)
	s64, o64, o64b := make([]float64, n), make([]float64, n), make([]float64, n)
	SwiGLUForward(o64, s64, g64, u64)
	SwiGLUForward(o64b, nil, g64, u64)
	dga, dua, dgb, dub := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	SwiGLUBackward(dga, dua, d64, g64, u64, s64)
	SwiGLUBackward(dgb, dub, d64, g64, u64, nil)
	if !slices.Equal(o64, o64b) || !slices.Equal(dga, dgb) || !slices.Equal(dua, dub) {
		t.Error("float64 SwiGLU without sig differs")
	}
}

func TestRMSNormForwardKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	N, C := 37, 581
	x, w := randF32(rng, N*C), randF32(rng, C)
	out, rstd := make([]float32, N*C), make([]float32, N)
	RMSNormForward(out, rstd, x, w, N, C, 1e-5)
	for i := 0; i < N; i++ {
		var ss float64
		for _, v := range x[i*C : (i+1)*C] {
			ss += float64(v) * float64(v)
		}
		r := 1 / math.Sqrt(ss/float64(C)+1e-5)
		if math.Abs(float64(rstd[i])-r) > 1e-6*r {
			t.Fatalf("rstd[%d] = %v, want %v", i, rstd[i], r)
		}
		for j, v := range x[i*C : (i+1)*C] {
			if want := v * rstd[i] * w[j]; out[i*C+j] != want {
				t.Fatalf("out[%d,%d] = %v, want %v", i, j, out[i*C+j], want)
			}
		}
	}
	re := make([]float32, N*C)
	RMSNormRecompute(re, rstd, x, w, N, C)
	sameF32(t, "RMSNormRecompute", re, out)
}

func TestResidualRMSNormForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	N, C := 41, 577
	a, b, w := randF32(rng, N*C), randF32(rng, N*C), randF32(rng, C)
	// The two layer functions it replaces.
	wantH, wantOut, wantR := make([]float32, N*C), make([]float32, N*C), make([]float32, N)
	ResidualForward(wantH, a, b)
	RMSNormForward(wantOut, wantR, wantH, w, N, C, 1e-6)
	h, out, r := make([]float32, N*C), make([]float32, N*C), make([]float32, N)
	ResidualRMSNormForward(h, out, r, a, b, w, N, C, 1e-6)
	sameF32(t, "h", h, wantH)
	sameF32(t, "rstd", r, wantR)
	sameF32(t, "out", out, wantOut)
	for i, v := range wantH {
		if v != a[i]+b[i] {
			t.Fatalf("ResidualForward[%d] = %v, want %v", i, v, a[i]+b[i])
		}
	}
	// float64: the same definition.
	a64, b64, w64 := fromF32[float64](a), fromF32[float64](b), fromF32[float64](w)
	h64, out64, r64 := make([]float64, N*C), make([]float64, N*C), make([]float64, N)
	ResidualRMSNormForward(h64, out64, r64, a64, b64, w64, N, C, 1e-6)
	for i := range out64 {
		if math.Abs(out64[i]-float64(out[i])) > 1e-5*(1+math.Abs(out64[i])) {
			t.Fatalf("float64 out[%d] = %v, float32 %v", i, out64[i], out[i])
		}
	}
}

func TestRMSNormBackwardKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	N, C := 23, 333
	x, w, d := randF32(rng, N*C), randF32(rng, C), randF32(rng, N*C)
	out, rstd := make([]float32, N*C), make([]float32, N)
	RMSNormForward(out, rstd, x, w, N, C, 1e-5)
	dx := make([]float32, N*C)
	RMSNormBackward(dx, nil, d, x, rstd, w, N, C)
	x64, w64, d64, r64 := fromF32[float64](x), fromF32[float64](w), fromF32[float64](d), fromF32[float64](rstd)
	dx64 := make([]float64, N*C)
	RMSNormBackward(dx64, nil, d64, x64, r64, w64, N, C)
	for i := range dx64 {
		if math.Abs(dx64[i]-float64(dx[i])) > 1e-5*(1+math.Abs(dx64[i])) {
			t.Fatalf("dx[%d] = %v, float64 %v", i, dx[i], dx64[i])
		}
	}
}

// TestLoRADropoutFused checks the LoRA layer functions with and without
// a dropout mask (float32: the fused kernels where the CPU and the widths
// allow) against the float64 path, which materialises the dropped-out
// input and runs the plain products, and without a mask against
// LoRAForward/LoRABackward.
func TestLoRADropoutFused(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, sh := range []struct {
		N, in, out, r int
		drop          bool
	}{
		{37, 48, 40, 8, true}, {64, 32, 16, 16, true}, {5, 24, 8, 8, true}, {16, 48, 64, 8, true},
		{37, 48, 40, 8, false}, {16, 48, 64, 8, false}, {9, 24, 32, 16, false},
	} {
		N, in, out, r := sh.N, sh.in, sh.out, sh.r
		const p = 0.3
		x, a, b, y0 := randF32(rng, N*in), randF32(rng, r*in), randF32(rng, out*r), randF32(rng, N*out)
		dy, da0, db0, dx0 := randF32(rng, N*out), randF32(rng, r*in), randF32(rng, out*r), randF32(rng, N*in)
		var mask []uint64
		if sh.drop {
			mask = make([]uint64, (N*in+63)/64)
			DropoutMask(mask, N*in, p, 5)
		}
		const scale = 0.7
		y, u := append([]float32(nil), y0...), make([]float32, N*r)
		LoRAForwardDropout(y, u, x, mask, p, make([]float32, N*in), make([]float32, r*out), a, b, scale, N, in, out, r)
		da, db, dx := append([]float32(nil), da0...), append([]float32(nil), db0...), append([]float32(nil), dx0...)
		LoRABackwardDropout(dx, da, db, make([]float32, N*r), make([]float32, r*out), dy, x, mask, p, make([]float32, N*in), make([]float32, N*in), u, a, b, scale, N, in, out, r)

		f := fromF32[float64]
		y64, u64 := f(y0), make([]float64, N*r)
		da64, db64, dx64 := f(da0), f(db0), f(dx0)
		if sh.drop {
			LoRAForwardDropout(y64, u64, f(x), mask, p, make([]float64, N*in), make([]float64, r*out), f(a), f(b), scale, N, in, out, r)
			LoRABackwardDropout(dx64, da64, db64, make([]float64, N*r), make([]float64, r*out), f(dy), f(x), mask, p, make([]float64, N*in), make([]float64, N*in), u64, f(a), f(b), scale, N, in, out, r)
		} else {
			LoRAForward(y64, u64, f(x), f(a), f(b), scale, N, in, out, r)
			LoRABackward(dx64, da64, db64, make([]float64, N*r), f(dy), f(x), u64, f(a), f(b), scale, N, in, out, r)
		}
		for _, c := range []struct {
			name string
			got  []float32
			want []float64
		}{{"u", u, u64}, {"y", y, y64}, {"dA", da, da64}, {"dB", db, db64}, {"dx", dx, dx64}} {
			var scaleRef float64
			for _, v := range c.want {
				scaleRef = max(scaleRef, math.Abs(v))
			}
			for i, v := range c.want {
				if math.Abs(float64(c.got[i])-v) > 1e-5*scaleRef {
					t.Fatalf("%+v %s[%d] = %v, float64 %v", sh, c.name, i, c.got[i], v)
				}
			}
		}
	}
}

// TestFusedNetMatchesFloat64 runs whole LoRA steps with rank 8 (the fused
// LoRA kernels where widths allow) with and without dropout: float32
// gradients match float64 ones, and are bit-identical on 1 and 3 threads.
func TestFusedNetMatchesFloat64(t *testing.T) {
	ctx := context.Background()
	for _, p := range []float64{0, 0.1} {
		opt := Options{Method: LoRA, LoRARank: 8, LoRAAlpha: 8, LoRADropout: p, Seed: 1}
		var ref [][]float32
		for run, threads := range []int{1, 3} {
			prev := runtime.GOMAXPROCS(threads)
			cfg, w := tinyModel(false, false, 2)
			n, err := New(cfg, w, opt)
			if err != nil {
				t.Fatal(err)
			}
			perturbAdapters(n, 2)
			n64, err := NewOf[float64](cfg, w, opt)
			if err != nil {
				t.Fatal(err)
			}
			for i, q := range n.Params() {
				for j, v := range q.Data {
					n64.Params()[i].Data[j] = float64(v)
				}
			}
			loss, _, err := n.ForwardBackward(ctx, tinyBatch(), 0.25)
			if err != nil {
				t.Fatal(err)
			}
			loss64, _, err := n64.ForwardBackward(ctx, tinyBatch(), 0.25)
			runtime.GOMAXPROCS(prev)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(loss-loss64) > 1e-5*math.Abs(loss64) {
				t.Errorf("p=%v: loss %v, float64 %v", p, loss, loss64)
			}
			var grads [][]float32
			for i, q := range n.Params() {
				grads = append(grads, slices.Clone(q.Grad))
				g64 := n64.Params()[i].Grad
				var m float64
				for _, v := range g64 {
					m = max(m, math.Abs(v))
				}
				for j, v := range q.Grad {
					if math.Abs(float64(v)-g64[j]) > 1e-4*m {
						t.Fatalf("p=%v: %s grad[%d] = %v, float64 %v", p, q.Name, j, v, g64[j])
					}
				}
			}
			if run == 0 {
				ref = grads
				continue
			}
			for i := range grads {
				if !slices.Equal(grads[i], ref[i]) {
					t.Errorf("p=%v: gradient of %s differs on %d threads", p, n.Params()[i].Name, threads)
				}
			}
		}
	}
}

func TestRoPEBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	T, heads, D := 7, 3, 64
	N, h := 2*T, D/2
	inv := make([]float64, h)
	for i := range inv {
		inv[i] = math.Pow(10000, -float64(2*i)/float64(D))
	}
	cos, sin := make([]float32, T*h), make([]float32, T*h)
	RoPETable(cos, sin, inv, T)
	for _, back := range []bool{false, true} {
		x := randF32(rng, N*heads*D)
		want := append([]float32(nil), x...)
		for i := 0; i < N; i++ { // the scalar rotation
			for hd := 0; hd < heads; hd++ {
				v := want[(i*heads+hd)*D : (i*heads+hd+1)*D]
				for j := 0; j < h; j++ {
					c, s := cos[(i%T)*h+j], sin[(i%T)*h+j]
					if back {
						s = -s
					}
					x1, x2 := v[j], v[j+h]
					v[j], v[j+h] = x1*c-x2*s, x2*c+x1*s
				}
			}
		}
		if back {
			RoPEBackward(x, cos, sin, N, T, heads, D)
		} else {
			RoPEForward(x, cos, sin, N, T, heads, D)
		}
		sameF32(t, "RoPE", x, want)
	}
}
