package tensor

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// dropoutBitRef is bit b of word w of DropoutMaskWords from the
// definition, one lane at a time.
func dropoutBitRef(w uint64, b int, key, thresh uint64) bool {
	z := key + w*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	s := z ^ (z >> 31)
	var r uint64
	for q := 0; q <= b/4; q++ {
		s += 0xa0761d6478bd642f
		h, l := bits.Mul64(s, s^0xe7037ed1a0b428db)
		r = h ^ l
	}
	return r>>(16*(b%4))&0x7fff >= thresh
}

func TestDropoutMaskWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, thresh := range []uint64{0, 1, 3277, 16384, 32767} {
		for _, n := range []int{0, 1, 7, 8, 9, 16, 23, 64} {
			key, w0 := rng.Uint64(), rng.IntN(1000)
			got := make([]uint64, n+1)
			got[n] = 12345
			DropoutMaskWords(got[:n], w0, key, thresh)
			if got[n] != 12345 {
				t.Fatalf("wrote past the end")
			}
			for i := 0; i < n; i++ {
				if want := dropoutWord(uint64(w0+i), key, thresh*0x0001000100010001); got[i] != want {
					t.Fatalf("thresh %d n %d: word %d = %#x, Go %#x", thresh, n, i, got[i], want)
				}
				for b := 0; b < 64; b++ {
					if got[i]>>b&1 == 1 != dropoutBitRef(uint64(w0+i), b, key, thresh) {
						t.Fatalf("thresh %d: word %d bit %d differs from the definition", thresh, w0+i, b)
					}
				}
			}
			if thresh == 0 {
				for i := 0; i < n; i++ {
					if got[i] != ^uint64(0) {
						t.Fatalf("threshold 0 dropped something: %#x", got[i])
					}
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("threshold 32768: no panic")
		}
	}()
	DropoutMaskWords(make([]uint64, 1), 0, 0, 1<<15)
}
