package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

type loraCase struct{ rows, in, r, bit0 int }

var loraCases = []loraCase{
	{1, 16, 8, 0}, {3, 48, 8, 16}, {5, 64, 16, 48}, {37, 576, 8, 0}, {9, 80, 24, 32}, {4, 1536, 8, 64}, {4, 48, 8, 0},
}

func loraInputs(rng *rand.Rand, c loraCase) (x, a []float32, mask []uint64) {
	x = fusedRand(rng, c.rows*c.in, 1)
	a = fusedRand(rng, c.r*c.in, 0.1)
	mask = fusedMask(rng, c.bit0+c.rows*c.in)
	if c.rows == 4 || c.rows == 9 { // no mask: every element kept
		mask = nil
	}
	return
}

// xd64 is element (n, j) of the dropped-out input in float64.
func xd64(x []float32, mask []uint64, bit0 int, scale float32, in, n, j int) float64 {
	if keep(mask, bit0+n*in+j) {
		return float64(x[n*in+j] * scale)
	}
	return 0
}

func near(got float32, want, mag float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*mag+1e-30
}

func TestLoRADownDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const s = float32(1 / 0.9)
	for _, c := range loraCases {
		x, a, mask := loraInputs(rng, c)
		u := fusedRand(rng, c.rows*c.r+1, 1)
		last := u[len(u)-1]
		LoRADownDropout(u[:c.rows*c.r], x, mask, c.bit0, s, a, c.rows, c.in, c.r)
		ref := make([]float32, c.rows*c.r)
		loraDownGo(ref, x, mask, c.bit0, s, a, c.rows, c.in, c.r)
		for n := 0; n < c.rows; n++ {
			for k := 0; k < c.r; k++ {
				var want, mag float64
				for j := 0; j < c.in; j++ {
					p := xd64(x, mask, c.bit0, s, c.in, n, j) * float64(a[k*c.in+j])
					want += p
					mag += math.Abs(p)
				}
				if got := u[n*c.r+k]; !near(got, want, mag) {
					t.Fatalf("%+v: u[%d,%d] = %v, want %v", c, n, k, got, want)
				}
				if got := ref[n*c.r+k]; !near(got, want, mag) {
					t.Fatalf("%+v: Go u[%d,%d] = %v, want %v", c, n, k, got, want)
				}
				if d := math.Abs(float64(u[n*c.r+k] - ref[n*c.r+k])); d > 1e-6*mag {
					t.Fatalf("%+v: u[%d,%d] = %v, Go %v", c, n, k, u[n*c.r+k], ref[n*c.r+k])
				}
			}
		}
		if u[len(u)-1] != last {
			t.Fatalf("%+v: wrote past u", c)
		}
	}
}

func TestLoRAUpDropoutAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const s = float32(1 / 0.7)
	for _, c := range loraCases {
		_, a, mask := loraInputs(rng, c)
		du := fusedRand(rng, c.rows*c.r, 1)
		dx0 := fusedRand(rng, c.rows*c.in+1, 1)
		dx := append([]float32(nil), dx0...)
		LoRAUpDropoutAdd(dx[:c.rows*c.in], du, mask, c.bit0, s, a, c.rows, c.in, c.r)
		ref := append([]float32(nil), dx0[:c.rows*c.in]...)
		loraUpAddGo(ref, du, mask, c.bit0, s, a, c.rows, c.in, c.r)
		for n := 0; n < c.rows; n++ {
			for j := 0; j < c.in; j++ {
				var acc, mag float64
				for k := 0; k < c.r; k++ {
					acc += float64(du[n*c.r+k]) * float64(a[k*c.in+j])
					mag += math.Abs(float64(du[n*c.r+k]) * float64(a[k*c.in+j]))
				}
				want := float64(dx0[n*c.in+j])
				if keep(mask, c.bit0+n*c.in+j) {
					want += acc * float64(s)
				}
				mag = mag*float64(s) + math.Abs(want)
				if got := dx[n*c.in+j]; !near(got, want, mag) {
					t.Fatalf("%+v: dx[%d,%d] = %v, want %v", c, n, j, got, want)
				}
				if d := math.Abs(float64(dx[n*c.in+j] - ref[n*c.in+j])); d > 1e-6*mag {
					t.Fatalf("%+v: dx[%d,%d] = %v, Go %v", c, n, j, dx[n*c.in+j], ref[n*c.in+j])
				}
			}
		}
		if dx[len(dx)-1] != dx0[len(dx0)-1] {
			t.Fatalf("%+v: wrote past dx", c)
		}
	}
}

func TestLoRADownGradDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	const s = float32(1 / 0.9)
	for _, c := range loraCases {
		x, _, mask := loraInputs(rng, c)
		du := fusedRand(rng, c.rows*c.r, 1)
		da0 := fusedRand(rng, c.r*c.in, 1)
		// All columns in two calls split at a multiple of 16, as threads do.
		split := c.in / 32 * 16
		da := append([]float32(nil), da0...)
		LoRADownGradDropout(da, du, x, mask, c.bit0, s, c.rows, c.in, c.r, 0, split)
		LoRADownGradDropout(da, du, x, mask, c.bit0, s, c.rows, c.in, c.r, split, c.in)
		ref := append([]float32(nil), da0...)
		loraDownGradGo(ref, du, x, mask, c.bit0, s, c.rows, c.in, c.r, 0, c.in)
		for k := 0; k < c.r; k++ {
			for j := 0; j < c.in; j++ {
				want, mag := float64(da0[k*c.in+j]), math.Abs(float64(da0[k*c.in+j]))
				for n := 0; n < c.rows; n++ {
					p := float64(du[n*c.r+k]) * xd64(x, mask, c.bit0, s, c.in, n, j)
					want += p
					mag += math.Abs(p)
				}
				if got := da[k*c.in+j]; !near(got, want, mag) {
					t.Fatalf("%+v: dA[%d,%d] = %v, want %v", c, k, j, got, want)
				}
				if d := math.Abs(float64(da[k*c.in+j] - ref[k*c.in+j])); d > 1e-6*mag {
					t.Fatalf("%+v: dA[%d,%d] = %v, Go %v", c, k, j, da[k*c.in+j], ref[k*c.in+j])
				}
			}
		}
	}
}

func TestLoRAFusedPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("short mask: no panic")
		}
	}()
	LoRADownDropout(make([]float32, 8), make([]float32, 128), make([]uint64, 1), 0, 1, make([]float32, 8*128), 1, 128, 8)
}
