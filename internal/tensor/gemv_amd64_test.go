//go:build amd64 && !purego

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemvRowsAVX512 checks that the row-after-row kernel sums every row
// bit for bit as gemv4AVX512 does (so Gemv's results did not change when
// it moved to it), for lengths around the 16- and 32-float chunks and a
// row stride wider than the row.
func TestGemvRowsAVX512(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 576, 1536, 1537} {
		for _, rows := range []int{1, 3, 4, 9} {
			ldw := n + r.IntN(3)
			w := randSlice(r, (rows-1)*ldw+n)
			x := randSlice(r, n)
			got := make([]float32, rows+1)
			got[rows] = 42 // must stay: the kernel writes rows floats only
			gemvRowsAVX512(&w[0], ldw, &x[0], n, &got[0], rows)
			if got[rows] != 42 {
				t.Fatalf("n=%d rows=%d: wrote past y", n, rows)
			}
			var want [4]float32
			for i := 0; i < rows; i++ {
				gemv4AVX512(&w[i*ldw], 0, &x[0], n, &want[0])
				if math.Float32bits(got[i]) != math.Float32bits(want[0]) {
					t.Fatalf("n=%d rows=%d row %d: %v, gemv4AVX512 gives %v", n, rows, i, got[i], want[0])
				}
				var ref float64
				for j := 0; j < n; j++ {
					ref += float64(w[i*ldw+j]) * float64(x[j])
				}
				if d := math.Abs(float64(got[i]) - ref); d > 1e-5*math.Max(1, math.Abs(ref))*math.Sqrt(float64(n)) {
					t.Fatalf("n=%d row %d: %v, float64 %v", n, i, got[i], ref)
				}
			}
		}
	}
}
