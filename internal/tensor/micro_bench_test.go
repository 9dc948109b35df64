package tensor

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMicroKernel times each micro-kernel alone on L1/L2-resident
// packed panels: the ceiling the blocked driver can reach on one thread.
func BenchmarkMicroKernel(b *testing.B) {
	for _, k := range AvailableKernels() {
		kern := k.impl()
		b.Run(k.String(), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			kc := kern.kc
			ap := randSlice(r, kern.mc*kc)
			bp := randSlice(r, kern.nr*kc)
			c := make([]float32, kern.mc*kern.nr)
			b.ResetTimer()
			for b.Loop() {
				for ir := 0; ir < kern.mc; ir += kern.mr {
					kern.micro(kc, ap[ir*kc:], bp, c[ir*kern.nr:], kern.nr, 1, 0)
				}
			}
			flop := 2 * float64(kern.mc*kern.nr*kc)
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
