package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSwiGLUScale checks SwiGLUScale against SwiGLU followed by the
// column scale, bit for bit, for every kernel, and that it writes nothing
// past the end.
func TestSwiGLUScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, n := range vfusedLengths {
		g, u, l := fusedRand(rng, n+1, 6), fusedRand(rng, n+1, 1), fusedRand(rng, n, 1)
		if n > 2 {
			g[0], g[1] = -120, 100
		}
		for _, k := range kernelsUnderTest() {
			out := make([]float32, n+1)
			out[n] = 7
			swigluScale(k, out[:n], g[:n], u[:n], l)
			if out[n] != 7 {
				t.Fatalf("%v n=%d wrote past the end", k, n)
			}
			want := make([]float32, n)
			swiglu(k, want, nil, g[:n], u[:n])
			for i := range want {
				want[i] *= l[i]
			}
			sameBits(t, "SwiGLUScale "+k.String(), n, out[:n], want)
			for i := range want { // and near the float64 value
				gv := float64(g[i])
				ref := gv / (1 + math.Exp(-gv)) * float64(u[i]) * float64(l[i])
				if math.Abs(float64(out[i])-ref) > 1e-5*math.Abs(ref)+1e-30 {
					t.Fatalf("%v n=%d: [%d] = %v, float64 %v", k, n, i, out[i], ref)
				}
			}
		}
	}
}

// TestSwiGLUScaleGrad checks SwiGLUScaleGrad on column blocks of a matrix
// against the unfused steps (SwiGLU for z, dl += dy∘z row by row, d = dy∘l,
// SwiGLUGrad's formulas), bit for bit, for every kernel, and that it
// touches nothing outside its columns.
func TestSwiGLUScaleGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, shape := range [][4]int{{1, 1, 0, 1}, {3, 40, 0, 40}, {5, 40, 16, 33}, {7, 100, 3, 70}, {9, 1536, 64, 128}, {4, 17, 17, 17}, {2, 300, 0, 300}} {
		rows, stride, j0, j1 := shape[0], shape[1], shape[2], shape[3]
		n := rows * stride
		g, u, dy := fusedRand(rng, n, 4), fusedRand(rng, n, 1), fusedRand(rng, n, 1)
		l, dl0 := fusedRand(rng, stride, 1), fusedRand(rng, stride, 1)
		for _, k := range kernelsUnderTest() {
			dg, du := make([]float32, n), make([]float32, n)
			for i := range dg {
				dg[i], du[i] = 5, 6
			}
			dl := append([]float32(nil), dl0...)
			swigluScaleGrad(k, dg, du, dl, dy, g, u, l, rows, stride, j0, j1)

			wdl := append([]float32(nil), dl0...)
			wdg, wdu := make([]float32, n), make([]float32, n)
			for i := range wdg {
				wdg[i], wdu[i] = 5, 6
			}
			for i := 0; i < rows; i++ {
				o := i*stride + j0
				m := j1 - j0
				z, s, d := make([]float32, m), make([]float32, m), make([]float32, m)
				swiglu(k, z, nil, g[o:o+m], u[o:o+m])
				vmathKernel(k, s, g[o:o+m], modeSigmoid)
				for j := range m {
					wdl[j0+j] += dy[o+j] * z[j]
					d[j] = dy[o+j] * l[j0+j]
				}
				swigluGradGo(wdg[o:o+m], wdu[o:o+m], d, g[o:o+m], u[o:o+m], s)
			}
			sameBits(t, "SwiGLUScaleGrad dl "+k.String(), stride, dl, wdl)
			sameBits(t, "SwiGLUScaleGrad dg "+k.String(), n, dg, wdg)
			sameBits(t, "SwiGLUScaleGrad du "+k.String(), n, du, wdu)
			if j1 > j0 && dl[j0] == dl0[j0] {
				t.Fatalf("%v %v: dl not accumulated", k, shape)
			}
		}
	}
}

func TestSwiGLUScaleGradPanics(t *testing.T) {
	x := make([]float32, 12)
	for _, f := range []func(){
		func() { SwiGLUScale(x[:3], x[:3], x[:3], x[:2]) },
		func() { SwiGLUScaleGrad(x, x, x[:4], x, x, x, x[:4], 3, 4, 2, 5) },
		func() { SwiGLUScaleGrad(x[:11], x, x[:4], x, x, x, x[:4], 3, 4, 0, 4) },
		func() { SwiGLUScaleGrad(x, x, x[:3], x, x, x, x[:4], 3, 4, 0, 4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		}()
	}
}

func BenchmarkSwiGLUScaleGrad(b *testing.B) {
	const rows, stride = 2048, 1536 // smollm2-135m's MLP at 8×256 tokens
	rng := rand.New(rand.NewPCG(1, 2))
	g, u, dy := fusedRand(rng, rows*stride, 3), fusedRand(rng, rows*stride, 1), fusedRand(rng, rows*stride, 1)
	l, dl := fusedRand(rng, stride, 1), make([]float32, stride)
	dg, du := make([]float32, rows*stride), make([]float32, rows*stride)
	for _, chunk := range []int{64, 256, 768} {
		b.Run(fmt.Sprint(chunk), func(b *testing.B) {
			b.SetBytes(int64(rows * stride * 4 * 5))
			for b.Loop() {
				for j := 0; j < stride; j += chunk {
					SwiGLUScaleGrad(dg, du, dl, dy, g, u, l, rows, stride, j, j+chunk)
				}
			}
		})
	}
}

// TestScaleGrad checks ScaleGrad on column blocks against the unfused
// loops, bit for bit, for every kernel, with dl nil and with dx = dy.
func TestScaleGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, shape := range [][4]int{{1, 1, 0, 1}, {3, 40, 0, 40}, {5, 40, 16, 33}, {7, 100, 3, 70}, {9, 192, 64, 128}, {4, 17, 17, 17}, {2, 300, 0, 300}} {
		rows, stride, j0, j1 := shape[0], shape[1], shape[2], shape[3]
		n := rows * stride
		x, dy0 := fusedRand(rng, n, 2), fusedRand(rng, n, 1)
		l, dl0 := fusedRand(rng, stride, 1), fusedRand(rng, stride, 1)
		wdx, wdl := append([]float32(nil), dy0...), append([]float32(nil), dl0...)
		for i := 0; i < rows; i++ {
			for j := j0; j < j1; j++ {
				wdl[j] += dy0[i*stride+j] * x[i*stride+j]
				wdx[i*stride+j] = dy0[i*stride+j] * l[j]
			}
		}
		for _, k := range kernelsUnderTest() {
			for _, inPlace := range []bool{false, true} {
				dy := append([]float32(nil), dy0...)
				dx := dy
				if !inPlace {
					dx = append([]float32(nil), dy0...) // columns outside [j0, j1) must stay
				}
				dl := append([]float32(nil), dl0...)
				scaleGrad(k, dx, dl, dy, x, l, rows, stride, j0, j1)
				sameBits(t, "ScaleGrad dx "+k.String(), n, dx, wdx)
				sameBits(t, "ScaleGrad dl "+k.String(), stride, dl, wdl)
				dx2 := append([]float32(nil), dy0...)
				scaleGrad(k, dx2, nil, dy0, x, l, rows, stride, j0, j1)
				sameBits(t, "ScaleGrad dx (dl nil) "+k.String(), n, dx2, wdx)
			}
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic on a short matrix")
			}
		}()
		x := make([]float32, 11)
		ScaleGrad(x, nil, x, x, x[:4], 3, 4, 0, 4)
	}()
}
