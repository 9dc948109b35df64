package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestVectorKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	eps := float64(math.Nextafter32(1, 2) - 1)
	for _, n := range []int{0, 1, 7, 8, 9, 63, 1000} {
		x, y := randSlice(r, n), randSlice(r, n)
		var dot, abs, sum, sabs float64
		for i := range x {
			dot += float64(x[i]) * float64(y[i])
			abs += math.Abs(float64(x[i]) * float64(y[i]))
			sum += float64(x[i])
			sabs += math.Abs(float64(x[i]))
		}
		if got := Dot(x, y); math.Abs(float64(got)-dot) > float64(n+1)*eps*abs {
			t.Errorf("n=%d: Dot = %v, want %v", n, got, dot)
		}
		if got := Sum(x); math.Abs(float64(got)-sum) > float64(n+1)*eps*sabs {
			t.Errorf("n=%d: Sum = %v, want %v", n, got, sum)
		}
		yy := append([]float32(nil), y...)
		Axpy(-0.5, x, yy)
		for i := range yy {
			// Within rounding: the compiler may fuse a·b+c into one FMA (GOAMD64=v3).
			if want := float64(y[i]) - 0.5*float64(x[i]); math.Abs(float64(yy[i])-want) > 2*eps*(math.Abs(float64(y[i]))+math.Abs(float64(x[i]))) {
				t.Fatalf("n=%d: Axpy[%d] = %v, want %v", n, i, yy[i], want)
			}
		}
		Scale(3, yy)
		Add(yy, yy, x)
		for i := range yy {
			if want := 3*(float64(y[i])-0.5*float64(x[i])) + float64(x[i]); math.Abs(float64(yy[i])-want) > 8*eps*(3*math.Abs(float64(y[i]))+3*math.Abs(float64(x[i]))) {
				t.Fatalf("n=%d: Scale/Add[%d] = %v, want %v", n, i, yy[i], want)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Dot of different lengths did not panic")
		}
	}()
	Dot(make([]float32, 2), make([]float32, 3))
}

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, y := randSlice(r, 4096), randSlice(r, 4096)
	b.SetBytes(8 * 4096)
	for b.Loop() {
		Dot(x, y)
	}
}
