package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSwiGLUIA3Grad checks the fused forward and backward with finite
// differences in float64.
func TestSwiGLUIA3Grad(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 1))
	N, I := 3, 70 // two column chunks
	g, u, l, R := randVec(r, N*I, 2), randVec(r, N*I, 1), randVec(r, I, 1), randVec(r, N*I, 1)
	z := make([]float64, N*I)
	f := func() float64 { SwiGLUIA3Forward(z, g, u, l, N, I); return dot64(z, R) }
	dg, du, dl := make([]float64, N*I), make([]float64, N*I), make([]float64, I)
	SwiGLUIA3Backward(dg, du, dl, R, g, u, l, N, I)
	gradCheck(t, "dg", g, dg, f)
	gradCheck(t, "du", u, du, f)
	gradCheck(t, "dl", l, dl, f)
}

// TestSwiGLUIA3Unfused checks that the fused functions give the bits of
// the unfused steps (SwiGLUForward, IA3Forward; SwiGLUForward,
// IA3Backward, SwiGLUBackward), in float32 and float64, at the training
// step's width.
func TestSwiGLUIA3Unfused(t *testing.T) {
	t.Run("float32", func(t *testing.T) { testSwiGLUIA3Unfused[float32](t) })
	t.Run("float64", func(t *testing.T) { testSwiGLUIA3Unfused[float64](t) })
}

func testSwiGLUIA3Unfused[F Float](t *testing.T) {
	r := rand.New(rand.NewPCG(32, 1))
	N, I := 37, 1536+5
	conv := func(x []float64) []F {
		y := make([]F, len(x))
		for i, v := range x {
			y[i] = F(v)
		}
		return y
	}
	g, u, l, dz := conv(randVec(r, N*I, 3)), conv(randVec(r, N*I, 1)), conv(randVec(r, I, 1)), conv(randVec(r, N*I, 1))
	dl0 := conv(randVec(r, I, 1))

	z := make([]F, N*I)
	SwiGLUIA3Forward(z, g, u, l, N, I)
	act, want := make([]F, N*I), make([]F, N*I)
	SwiGLUForward(act, nil, g, u)
	IA3Forward(want, act, l, N, I)
	sameF(t, "z", z, want)

	dg, du, dl := make([]F, N*I), make([]F, N*I), append([]F(nil), dl0...)
	SwiGLUIA3Backward(dg, du, dl, dz, g, u, l, N, I)
	wdg, wdu, wdl, d := make([]F, N*I), make([]F, N*I), append([]F(nil), dl0...), make([]F, N*I)
	IA3Backward(d, wdl, dz, act, l, N, I)
	SwiGLUBackward(wdg, wdu, d, g, u, nil)
	sameF(t, "dl", dl, wdl)
	sameF(t, "dg", dg, wdg)
	sameF(t, "du", du, wdu)
}

func sameF[F Float](t *testing.T, what string, got, want []F) {
	t.Helper()
	for i := range want {
		if math.Float64bits(float64(got[i])) != math.Float64bits(float64(want[i])) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}
