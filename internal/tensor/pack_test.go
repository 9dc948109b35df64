package tensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPackFastMatchesGo checks the assembly packers against the Go loops
// for every panel width the kernels use, with odd kc and padded strides.
func TestPackFastMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, w := range []int{4, 6, 14, 16, 32} {
		for _, kc := range []int{1, 3, 7, 8, 9, 16, 31, 256} {
			for _, trans := range []bool{false, true} {
				t.Run(fmt.Sprintf("w=%d/kc=%d/trans=%v", w, kc, trans), func(t *testing.T) {
					rows, cols := 2*w+3, kc+5 // a source with 2 panels and an edge
					ld := cols + 2
					src := randSlice(r, rows*ld)
					// packA reads op(A) (mc×kc); trans=false means A is rows×cols.
					mc := rows
					lda := ld
					a := src
					if trans {
						// A stored k×m: kc rows of at least mc floats.
						lda = mc + 1
						a = randSlice(r, kc*lda)
					}
					want := make([]float32, (mc+w)*kc)
					got := make([]float32, (mc+w)*kc)
					for i := range got {
						got[i], want[i] = -1, -1
					}
					packA(false, want, trans, a, lda, 0, 0, mc, kc, w)
					packA(true, got, trans, a, lda, 0, 0, mc, kc, w)
					if !slices.Equal(got, want) {
						t.Fatalf("packA fast differs from Go")
					}
					// packB reads op(B) (kc×nc); trans=true means B is nc×kc.
					nc := rows
					ldb := nc + 3
					b := randSlice(r, kc*ldb)
					if trans {
						ldb = kc + 2
						b = randSlice(r, nc*ldb)
					}
					want = make([]float32, (nc+w)*kc)
					got = make([]float32, (nc+w)*kc)
					packB(false, want, trans, b, ldb, 0, 0, kc, nc, w)
					packB(true, got, trans, b, ldb, 0, 0, kc, nc, w)
					if !slices.Equal(got, want) {
						t.Fatalf("packB fast differs from Go")
					}
				})
			}
		}
	}
}
