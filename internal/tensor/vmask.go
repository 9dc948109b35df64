package tensor

import (
	"fmt"
	"math/bits"
)

// DropoutMaskWords fills mask[i] with the keep-bits of mask word w0+i of a
// dropout stream (nn.DropoutMask's definition): word w's generator is a
// wyrand stream seeded by splitmix64(key + w·0x9e3779b97f4a7c15); each of
// its 16 draws gives four 15-bit lanes (bits 0–14, 16–30, 32–46, 48–62),
// and bit 4q+l of the word is set when lane l of draw q is ≥ thresh
// (thresh < 32768). The AVX-512 kernel (eight words per vector, the
// 64×64→128-bit products built from 32-bit ones) gives the same bits.
func DropoutMaskWords(mask []uint64, w0 int, key, thresh uint64) {
	if thresh >= 1<<15 || w0 < 0 {
		panic(fmt.Sprintf("tensor.DropoutMaskWords: threshold %d, first word %d", thresh, w0))
	}
	t4 := thresh * 0x0001000100010001
	n := 0
	if fusedAVX512() && hasAVX512DQ {
		n = len(mask) &^ 7
		if n > 0 {
			dropoutMaskAVX512(&mask[0], n, uint64(w0), key, t4)
		}
	}
	for i := n; i < len(mask); i++ {
		mask[i] = dropoutWord(uint64(w0+i), key, t4)
	}
}

// dropoutWord is one word of DropoutMaskWords; t4 holds the threshold in
// each 16-bit lane.
func dropoutWord(w, key, t4 uint64) uint64 {
	const hi = 0x8000800080008000
	z := key + w*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	s := z ^ (z >> 31)
	var keep uint64
	for q := 0; q < 16; q++ {
		s += 0xa0761d6478bd642f
		h, l := bits.Mul64(s, s^0xe7037ed1a0b428db)
		r := h ^ l
		// Four 15-bit lanes at once: with the lane's top bit set, lane − t
		// cannot borrow, and the top bit survives exactly when lane ≥ t.
		d := ((r &^ hi) | hi) - t4
		m := d & hi
		keep |= ((m>>15 | m>>30 | m>>45 | m>>60) & 0xf) << (4 * q)
	}
	return keep
}
