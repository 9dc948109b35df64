package model

import "math"

// RopeInvFreq returns the rotary inverse frequencies [Dim/2] exactly as
// Hugging Face computes them in float32: 1 / theta^(2i/Dim), then, for
// rope_scaling "linear", divided by the factor, and for "llama3",
// divided by the factor below the low-frequency wavelength, kept above the
// high-frequency one, and smoothly interpolated in between.
func RopeInvFreq(c *Config) []float32 {
	D := c.Dim()
	inv := make([]float32, D/2)
	for i := range inv {
		// torch: base ** (arange(0, D, 2).float() / D), float32 throughout.
		e := float32(2*i) / float32(D)
		inv[i] = float32(1 / float32(math.Pow(c.RopeTheta, float64(e))))
	}
	rs := c.RopeScaling
	if rs == nil {
		return inv
	}
	switch rs.RopeType {
	case "linear":
		for i := range inv {
			inv[i] = inv[i] / float32(rs.Factor)
		}
	case "llama3":
		factor := rs.Factor
		old := float64(rs.OriginalMaxPositionEmbeddings)
		lowWavelen := old / rs.LowFreqFactor
		highWavelen := old / rs.HighFreqFactor
		for i, f := range inv {
			// HF does this arithmetic on float32 tensors with Python float
			// scalars; float64 here differs by at most an ulp of float32.
			wavelen := 2 * math.Pi / float64(f)
			v := float64(f)
			if wavelen > lowWavelen {
				v = float64(f) / factor
			}
			if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
				smooth := (old/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				v = (1-smooth)*v/factor + smooth*v
			}
			inv[i] = float32(v)
		}
	}
	return inv
}

// ropeTables fills cos and sin [len(pos), Dim/2] for the given positions:
// angle = float32(invFreq · pos) as HF's float32 matmul computes it.
func ropeTables(cos, sin []float32, invFreq []float32, pos []int) {
	h := len(invFreq)
	for t, p := range pos {
		for i, f := range invFreq {
			a := f * float32(p)
			cos[t*h+i] = float32(math.Cos(float64(a)))
			sin[t*h+i] = float32(math.Sin(float64(a)))
		}
	}
}
