package nn

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AdamW is torch.optim.AdamW over a fixed list of parameters: decoupled
// weight decay p ← p·(1 − lr·wd), moments m, v with bias correction, and
// p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε), in float32 as torch does
// for float32 parameters. Zero fields take the defaults β1 0.9, β2 0.999,
// ε 1e-8; WeightDecay 0 means none.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64

	params []*Param
	m, v   [][]float32
	t      int64
}

// NewAdamW returns an optimiser for params with default hyperparameters
// and zero moments.
func NewAdamW(params []*Param) *AdamW {
	o := &AdamW{params: params, m: make([][]float32, len(params)), v: make([][]float32, len(params))}
	for i, p := range params {
		o.m[i] = make([]float32, len(p.Data))
		o.v[i] = make([]float32, len(p.Data))
	}
	return o
}

// Steps returns how many steps have been taken.
func (o *AdamW) Steps() int64 { return o.t }

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

// Step updates every parameter from its gradient with learning rate lr.
func (o *AdamW) Step(lr float64) {
	b1, b2 := orDefault(o.Beta1, 0.9), orDefault(o.Beta2, 0.999)
	eps := float32(orDefault(o.Eps, 1e-8))
	o.t++
	bc1 := 1 - math.Pow(b1, float64(o.t))
	bc2 := 1 - math.Pow(b2, float64(o.t))
	stepSize := float32(lr / bc1)
	bc2s := float32(math.Sqrt(bc2))
	decay := float32(1 - lr*o.WeightDecay)
	fb1, fb2 := float32(b1), float32(b2)
	for i, p := range o.params {
		m, v := o.m[i], o.v[i]
		parallelChunks(len(p.Grad), 1<<15, func(j0, j1 int) {
			for j := j0; j < j1; j++ {
				g := p.Grad[j]
				if o.WeightDecay != 0 {
					p.Data[j] *= decay
				}
				m[j] = fb1*m[j] + (1-fb1)*g
				v[j] = fb2*v[j] + (1-fb2)*g*g
				denom := float32(math.Sqrt(float64(v[j])))/bc2s + eps
				p.Data[j] -= stepSize * m[j] / denom
			}
		})
	}
}

const adamMagic = "GADAMW01"

// MarshalBinary encodes the step count and moments: magic, step (uint64),
// parameter count (uint32), then per parameter its length (uint64) and m
// and v as little-endian float32.
func (o *AdamW) MarshalBinary() ([]byte, error) {
	size := len(adamMagic) + 12
	for _, m := range o.m {
		size += 8 + 8*len(m)
	}
	b := make([]byte, 0, size)
	b = append(b, adamMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(o.t))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.m)))
	for i := range o.m {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(o.m[i])))
		for _, x := range o.m[i] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		for _, x := range o.v[i] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	return b, nil
}

// UnmarshalBinary restores a state from MarshalBinary. The parameter count
// and every length must match this optimiser's parameters.
func (o *AdamW) UnmarshalBinary(b []byte) error {
	if len(b) < len(adamMagic)+12 || string(b[:len(adamMagic)]) != adamMagic {
		return fmt.Errorf("%w: AdamW state: bad header", ErrOptions)
	}
	b = b[len(adamMagic):]
	t := int64(binary.LittleEndian.Uint64(b))
	count := int(binary.LittleEndian.Uint32(b[8:]))
	b = b[12:]
	if count != len(o.m) {
		return fmt.Errorf("%w: AdamW state has %d parameters, optimiser has %d", ErrOptions, count, len(o.m))
	}
	// Validate every length before touching the moments, so a bad state
	// leaves the optimiser as it was.
	rest := b
	for i := range o.m {
		if len(rest) < 8 {
			return fmt.Errorf("%w: AdamW state truncated at parameter %d", ErrOptions, i)
		}
		n := binary.LittleEndian.Uint64(rest)
		if n != uint64(len(o.m[i])) {
			return fmt.Errorf("%w: AdamW state parameter %d has %d values, want %d", ErrOptions, i, n, len(o.m[i]))
		}
		if uint64(len(rest)-8) < 8*n {
			return fmt.Errorf("%w: AdamW state truncated at parameter %d", ErrOptions, i)
		}
		rest = rest[8+8*n:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: AdamW state has %d trailing bytes", ErrOptions, len(rest))
	}
	for i := range o.m {
		n := len(o.m[i])
		b = b[8:]
		for j := range o.m[i] {
			o.m[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
			o.v[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*(n+j):]))
		}
		b = b[8*n:]
	}
	o.t = t
	return nil
}

// ClipGradNorm scales all gradients by maxNorm/(norm+1e-6) when their
// global L2 norm exceeds maxNorm (torch.nn.utils.clip_grad_norm_) and
// returns the norm before clipping. The norm is accumulated in float64.
func ClipGradNorm(params []*Param, maxNorm float64) float64 {
	var ss float64
	var part []float64
	for _, p := range params {
		// Partial sums over fixed chunks, added in chunk order: the result
		// does not depend on the thread count.
		const chunk = 1 << 15
		part = fit(part, (len(p.Grad)+chunk-1)/chunk)
		parallelChunks(len(p.Grad), chunk, func(j0, j1 int) {
			var s float64
			for _, g := range p.Grad[j0:j1] {
				s += float64(g) * float64(g)
			}
			part[j0/chunk] = s
		})
		for _, s := range part {
			ss += s
		}
	}
	norm := math.Sqrt(ss)
	if coef := maxNorm / (norm + 1e-6); coef < 1 {
		c := float32(coef)
		for _, p := range params {
			parallelChunks(len(p.Grad), 1<<15, func(j0, j1 int) {
				for j := j0; j < j1; j++ {
					p.Grad[j] *= c
				}
			})
		}
	}
	return norm
}
