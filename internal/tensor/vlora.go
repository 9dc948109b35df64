package tensor

import (
	"fmt"
	"unsafe"
)

// LoRA's down projection with dropout, fused: the dropped-out input
// xd = x∘M·s (M the keep-bits of a dropout mask, s = 1/(1−p)) is never
// materialised; the kernels read x and the mask bits directly.
//
//	LoRADownDropout:      u  = xd·Aᵀ                 u [rows, r], x [rows, in], A [r, in]
//	LoRAUpDropoutAdd:     dx += (du·A)∘M·s           dx [rows, in], du [rows, r]
//	LoRADownGradDropout:  dA += duᵀ·xd               dA [r, in]
//
// Mask bit b of the stream (bit b%64 of mask[b/64]) belongs to element b
// of x in row-major order, counted from row 0 of the arguments plus bit0.
// A nil mask keeps every element: the same products of x·s (LoRA's B side
// and the kernels without dropout).
// The products are summed in float32 with fused multiply-adds in fixed
// orders that depend on the shape only (results do not depend on how rows
// or columns are split over threads): LoRADownDropout in sixteen lanes per
// row (lane l takes columns ≡ l mod 16), then the lanes pairwise;
// LoRAUpDropoutAdd over k in order; LoRADownGradDropout over rows in
// order. The portable versions are the references; the AVX-512 ones run
// when LoRAFused reports true.

// LoRAFused reports whether the AVX-512 kernels run for these sizes
// (in a multiple of 16, r a multiple of 8, bit0 a multiple of 16).
func LoRAFused(in, r, bit0 int) bool {
	return fusedAVX512() && in > 0 && in%16 == 0 && r > 0 && r%8 == 0 && bit0%16 == 0
}

func loraCheck(fn string, rows, in, r int, x, y []float32, ny int, a []float32, mask []uint64, bit0 int) {
	if rows < 0 || in < 0 || r < 0 || bit0 < 0 || len(x) < rows*in || len(y) < rows*ny || len(a) < r*in || (mask != nil && len(mask)*64 < bit0+rows*in) {
		panic(fmt.Sprintf("tensor.%s: rows %d, in %d, r %d, bit0 %d do not fit lengths %d, %d, %d, mask %d", fn, rows, in, r, bit0, len(x), len(y), len(a), len(mask)))
	}
}

func maskAt(mask []uint64, bit0 int) *uint16 {
	if mask == nil {
		return nil
	}
	return (*uint16)(unsafe.Add(unsafe.Pointer(&mask[0]), bit0/8))
}

func keep(mask []uint64, b int) bool { return mask == nil || mask[b>>6]>>(b&63)&1 != 0 }

// LoRADownDropout sets u = (x∘M·s)·Aᵀ.
func LoRADownDropout(u, x []float32, mask []uint64, bit0 int, scale float32, a []float32, rows, in, r int) {
	loraCheck("LoRADownDropout", rows, in, r, x, u, r, a, mask, bit0)
	if rows == 0 || r == 0 {
		return
	}
	if LoRAFused(in, r, bit0) {
		f := loraDownAVX512
		if mask == nil {
			f = loraDownNoMaskAVX512
		}
		for k0 := 0; k0 < r; k0 += 8 {
			f(&u[k0], &x[0], maskAt(mask, bit0), &a[k0*in], rows, in, r, scale)
		}
		return
	}
	loraDownGo(u, x, mask, bit0, scale, a, rows, in, r)
}

func loraDownGo(u, x []float32, mask []uint64, bit0 int, scale float32, a []float32, rows, in, r int) {
	tbl := [2]float32{0, scale}
	for n := 0; n < rows; n++ {
		xn := x[n*in : (n+1)*in]
		for k := 0; k < r; k++ {
			ak := a[k*in : (k+1)*in]
			var lanes [16]float32
			for j, v := range xn {
				b := 0
				if keep(mask, bit0+n*in+j) {
					b = 1
				}
				lanes[j&15] = fma32(v*tbl[b], ak[j], lanes[j&15])
			}
			// The kernel's reduction: lanes l + l+8, then adjacent pairs
			// within each half, then the halves.
			for l := 0; l < 8; l++ {
				lanes[l] += lanes[l+8]
			}
			u[n*r+k] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
		}
	}
}

// LoRAUpDropoutAdd sets dx += (du·A)∘M·s, each element's Σ_k du·A
// accumulated over k in order, then scaled and added.
func LoRAUpDropoutAdd(dx, du []float32, mask []uint64, bit0 int, scale float32, a []float32, rows, in, r int) {
	loraCheck("LoRAUpDropoutAdd", rows, in, r, dx, du, r, a, mask, bit0)
	if rows == 0 || in == 0 {
		return
	}
	if LoRAFused(in, r, bit0) {
		f := loraUpAddAVX512
		if mask == nil {
			f = loraUpAddNoMaskAVX512
		}
		f(&dx[0], &du[0], maskAt(mask, bit0), &a[0], rows, in, r, scale)
		return
	}
	loraUpAddGo(dx, du, mask, bit0, scale, a, rows, in, r)
}

func loraUpAddGo(dx, du []float32, mask []uint64, bit0 int, scale float32, a []float32, rows, in, r int) {
	tbl := [2]float32{0, scale}
	for n := 0; n < rows; n++ {
		for j := 0; j < in; j++ {
			var acc float32
			for k := 0; k < r; k++ {
				acc = fma32(du[n*r+k], a[k*in+j], acc)
			}
			b := 0
			if keep(mask, bit0+n*in+j) {
				b = 1
			}
			dx[n*in+j] += float32(acc * tbl[b])
		}
	}
}

// LoRADownGradDropout sets dA += duᵀ·(x∘M·s) for columns [j0, j1) of dA
// and x (a multiple of 16 apart from j1 = in when in is not), summing over
// rows in order and adding the sum to dA once.
func LoRADownGradDropout(da, du, x []float32, mask []uint64, bit0 int, scale float32, rows, in, r, j0, j1 int) {
	loraCheck("LoRADownGradDropout", rows, in, r, x, du, r, da, mask, bit0)
	if j0 < 0 || j1 > in || j0 > j1 {
		panic(fmt.Sprintf("tensor.LoRADownGradDropout: columns [%d, %d) of %d", j0, j1, in))
	}
	if rows == 0 || r == 0 || j0 == j1 {
		return
	}
	if LoRAFused(in, r, bit0) && j0%16 == 0 && j1%16 == 0 {
		f16, f32 := loraDownGradAVX512, loraDownGrad32AVX512
		if mask == nil {
			f16, f32 = loraDownGradNoMaskAVX512, loraDownGrad32NoMaskAVX512
		}
		for j := j0; j < j1; {
			w := 16
			if j+32 <= j1 {
				w = 32
			}
			for k0 := 0; k0 < r; k0 += 8 {
				if w == 32 {
					f32(&da[k0*in+j], &du[k0], &x[j], maskAt(mask, bit0+j), rows, in, r, scale)
				} else {
					f16(&da[k0*in+j], &du[k0], &x[j], maskAt(mask, bit0+j), rows, in, r, scale)
				}
			}
			j += w
		}
		return
	}
	loraDownGradGo(da, du, x, mask, bit0, scale, rows, in, r, j0, j1)
}

func loraDownGradGo(da, du, x []float32, mask []uint64, bit0 int, scale float32, rows, in, r, j0, j1 int) {
	tbl := [2]float32{0, scale}
	for k := 0; k < r; k++ {
		for j := j0; j < j1; j++ {
			var acc float32
			for n := 0; n < rows; n++ {
				b := 0
				if keep(mask, bit0+n*in+j) {
					b = 1
				}
				acc = fma32(du[n*r+k], x[n*in+j]*tbl[b], acc)
			}
			da[k*in+j] += acc
		}
	}
}
