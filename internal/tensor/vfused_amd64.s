//go:build amd64 && !purego

#include "textflag.h"
#include "vexp_amd64.h"

// AVX-512 kernels of vfused.go. Every routine walks whole vectors of 16
// floats and finishes with one masked vector for the tail (masked loads do
// not fault on the lanes they skip). The exp is vmath_amd64.s's, step for
// step, from vexp_amd64.h.

EXPTABLE(vfc)
DATA vfc<>+52(SB)/4, $0xff800000 // -Inf
DATA vfc<>+56(SB)/4, $16         // lane count (int32)
GLOBL vfc<>(SB), RODATA|NOPTR, $60

DATA vfiota<>+0(SB)/8, $0x0000000100000000
DATA vfiota<>+8(SB)/8, $0x0000000300000002
DATA vfiota<>+16(SB)/8, $0x0000000500000004
DATA vfiota<>+24(SB)/8, $0x0000000700000006
DATA vfiota<>+32(SB)/8, $0x0000000900000008
DATA vfiota<>+40(SB)/8, $0x0000000b0000000a
DATA vfiota<>+48(SB)/8, $0x0000000d0000000c
DATA vfiota<>+56(SB)/8, $0x0000000f0000000e
GLOBL vfiota<>(SB), RODATA|NOPTR, $64

// TAILMASK sets K2 to the low CX bits (0 < CX < 16); clobbers AX.
#define TAILMASK \
	MOVQ $1, AX; \
	SHLQ CX, AX; \
	DECQ AX; \
	KMOVW AX, K2

// ACC16 adds the 16 floats of Z3, widened, to the float64 lanes Z10
// (elements 0–7) and Z11 (8–15); Z4, Z5 scratch.
#define ACC16 \
	VCVTPS2PD Y3, Z4; \
	VADDPD Z4, Z10, Z10; \
	VEXTRACTF32X8 $1, Z3, Y5; \
	VCVTPS2PD Y5, Z5; \
	VADDPD Z5, Z11, Z11

// REDUCE16 sums the lanes of Z10, Z11 pairwise (j + j+8, j + j+4,
// j + j+2, j + j+1) into X10.
#define REDUCE16 \
	VADDPD Z11, Z10, Z10; \
	VEXTRACTF64X4 $1, Z10, Y11; \
	VADDPD Y11, Y10, Y10; \
	VEXTRACTF128 $1, Y10, X11; \
	VADDPD X11, X10, X10; \
	VPERMILPD $1, X10, X11; \
	VADDSD X11, X10, X10

// func dropoutScaleAVX512(out, x *float32, mask *uint64, n int, scale float32)
TEXT ·dropoutScaleAVX512(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ mask+16(FP), BX
	MOVQ n+24(FP), CX
	VBROADCASTSS scale+32(FP), Z7

dsloop:
	CMPQ CX, $16
	JLT dstail
	KMOVW (BX), K1
	VMOVAPS.Z Z7, K1, Z1 // scale where kept, 0 where dropped
	VMULPS (SI), Z1, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $2, BX
	SUBQ $16, CX
	JMP dsloop

dstail:
	TESTQ CX, CX
	JEQ dsdone
	TAILMASK
	KMOVW (BX), K1
	VMOVAPS.Z Z7, K1, Z1
	VMOVUPS.Z (SI), K2, Z0
	VMULPS Z0, Z1, Z0
	VMOVUPS Z0, K2, (DI)

dsdone:
	VZEROUPPER
	RET

// func dropoutScaleAddAVX512(dx, d *float32, mask *uint64, n int, scale float32)
TEXT ·dropoutScaleAddAVX512(SB), NOSPLIT, $0-36
	MOVQ dx+0(FP), DI
	MOVQ d+8(FP), SI
	MOVQ mask+16(FP), BX
	MOVQ n+24(FP), CX
	VBROADCASTSS scale+32(FP), Z7

daloop:
	CMPQ CX, $16
	JLT datail
	KMOVW (BX), K1
	VMOVAPS.Z Z7, K1, Z1
	VMULPS (SI), Z1, Z1
	VADDPS (DI), Z1, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $2, BX
	SUBQ $16, CX
	JMP daloop

datail:
	TESTQ CX, CX
	JEQ dadone
	TAILMASK
	KMOVW (BX), K1
	VMOVAPS.Z Z7, K1, Z1
	VMOVUPS.Z (SI), K2, Z0
	VMULPS Z0, Z1, Z1
	VMOVUPS.Z (DI), K2, Z0
	VADDPS Z0, Z1, Z0
	VMOVUPS Z0, K2, (DI)

dadone:
	VZEROUPPER
	RET

// func expSubSumAVX512(x *float32, n int, m float32) float64
TEXT ·expSubSumAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Z8
	EXPCONSTS(vfc)
	VXORPD Z10, Z10, Z10
	VXORPD Z11, Z11, Z11

esloop:
	CMPQ CX, $16
	JLT estail
	VMOVUPS (SI), Z1
	VSUBPS Z8, Z1, Z1
	EXP16
	VMOVUPS Z3, (SI)
	ACC16
	ADDQ $64, SI
	SUBQ $16, CX
	JMP esloop

estail:
	TESTQ CX, CX
	JEQ esdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z1
	VSUBPS Z8, Z1, Z1
	EXP16
	VMOVAPS.Z Z3, K2, Z3 // skipped lanes add 0
	VMOVUPS Z3, K2, (SI)
	ACC16

esdone:
	REDUCE16
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET

// func expSubGradAVX512(p, dp *float32, n int, l, c float32)
TEXT ·expSubGradAVX512(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ dp+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS l+24(FP), Z8
	VBROADCASTSS c+28(FP), Z9
	EXPCONSTS(vfc)

egloop:
	CMPQ CX, $16
	JLT egtail
	VMOVUPS (SI), Z1
	VSUBPS Z8, Z1, Z1
	EXP16
	VMOVUPS Z3, (SI)
	VMOVUPS (DI), Z6
	VSUBPS Z9, Z6, Z6
	VMULPS Z6, Z3, Z6
	VMOVUPS Z6, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP egloop

egtail:
	TESTQ CX, CX
	JEQ egdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z1
	VSUBPS Z8, Z1, Z1
	EXP16
	VMOVUPS Z3, K2, (SI)
	VMOVUPS.Z (DI), K2, Z6
	VSUBPS Z9, Z6, Z6
	VMULPS Z6, Z3, Z6
	VMOVUPS Z6, K2, (DI)

egdone:
	VZEROUPPER
	RET

// func maxIndexAVX512(x *float32, n int, lanes *[16]float32, idx *[16]int32)
TEXT ·maxIndexAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ lanes+16(FP), DI
	MOVQ idx+24(FP), DX
	VBROADCASTSS vfc<>+52(SB), Z7 // -Inf
	VPBROADCASTD vfc<>+56(SB), Z6 // 16
	VMOVAPS Z7, Z0                // lane maxima
	VMOVDQU32 vfiota<>(SB), Z2    // indices of the current vector
	VPXORD Z3, Z3, Z3             // indices of the lane maxima

mxloop:
	CMPQ CX, $16
	JLT mxtail
	VMOVUPS (SI), Z1
	VCMPPS $0x1e, Z0, Z1, K1 // x > max (ordered: NaN never)
	VMOVAPS Z1, K1, Z0
	VMOVDQA32 Z2, K1, Z3
	VPADDD Z6, Z2, Z2
	ADDQ $64, SI
	SUBQ $16, CX
	JMP mxloop

mxtail:
	TESTQ CX, CX
	JEQ mxdone
	TAILMASK
	VMOVAPS Z7, Z1
	VMOVUPS (SI), K2, Z1 // skipped lanes stay −Inf
	VCMPPS $0x1e, Z0, Z1, K1
	VMOVAPS Z1, K1, Z0
	VMOVDQA32 Z2, K1, Z3

mxdone:
	VMOVUPS Z0, (DI)
	VMOVDQU32 Z3, (DX)
	VZEROUPPER
	RET

// func swigluAVX512(out, sig, gate, up *float32, n int)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ sig+8(FP), R8
	MOVQ gate+16(FP), SI
	MOVQ up+24(FP), R9
	MOVQ n+32(FP), CX
	EXPCONSTS(vfc)
	VBROADCASTSS vfc<>+48(SB), Z28
	VXORPS Z29, Z29, Z29

swloop:
	CMPQ CX, $16
	JLT swtail
	VMOVUPS (SI), Z0
	VMOVUPS (R9), Z9
	VORPS Z28, Z0, Z1 // t = −|g|
	EXP16
	// σ(g) = (g < 0 ? e : 1) / (1 + e)
	VADDPS Z27, Z3, Z5
	VCMPPS $1, Z29, Z0, K1
	VMOVAPS Z27, Z6
	VMOVAPS Z3, K1, Z6
	VDIVPS Z5, Z6, Z3
	VMOVUPS Z3, (R8)
	VMULPS Z3, Z0, Z6 // g·σ
	VMULPS Z9, Z6, Z6 // ·u
	VMOVUPS Z6, (DI)
	ADDQ $64, SI
	ADDQ $64, R9
	ADDQ $64, R8
	ADDQ $64, DI
	SUBQ $16, CX
	JMP swloop

swtail:
	TESTQ CX, CX
	JEQ swdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (R9), K2, Z9
	VORPS Z28, Z0, Z1
	EXP16
	VADDPS Z27, Z3, Z5
	VCMPPS $1, Z29, Z0, K1
	VMOVAPS Z27, Z6
	VMOVAPS Z3, K1, Z6
	VDIVPS Z5, Z6, Z3
	VMOVUPS Z3, K2, (R8)
	VMULPS Z3, Z0, Z6
	VMULPS Z9, Z6, Z6
	VMOVUPS Z6, K2, (DI)

swdone:
	VZEROUPPER
	RET

// func swigluGradAVX512(dg, du, dout, gate, up, sig *float32, n int)
TEXT ·swigluGradAVX512(SB), NOSPLIT, $0-56
	MOVQ dg+0(FP), DI
	MOVQ du+8(FP), R8
	MOVQ dout+16(FP), SI
	MOVQ gate+24(FP), R9
	MOVQ up+32(FP), R10
	MOVQ sig+40(FP), R11
	MOVQ n+48(FP), CX
	VBROADCASTSS vfc<>+44(SB), Z27 // 1

sgloop:
	CMPQ CX, $16
	JLT sgtail
	VMOVUPS (SI), Z0  // dout
	VMOVUPS (R9), Z1  // g
	VMOVUPS (R10), Z2 // u
	VMOVUPS (R11), Z3 // s
	VMULPS Z1, Z0, Z4 // dout·g
	VMULPS Z3, Z4, Z4 // ·s
	VMOVUPS Z4, (R8)
	VSUBPS Z3, Z27, Z5 // 1 − s
	VMULPS Z5, Z1, Z5  // g·(1 − s)
	VADDPS Z5, Z27, Z5 // 1 + g·(1 − s)
	VMULPS Z2, Z0, Z6  // dout·u
	VMULPS Z3, Z6, Z6  // ·s
	VMULPS Z5, Z6, Z6
	VMOVUPS Z6, (DI)
	ADDQ $64, SI
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, R8
	ADDQ $64, DI
	SUBQ $16, CX
	JMP sgloop

sgtail:
	TESTQ CX, CX
	JEQ sgdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (R9), K2, Z1
	VMOVUPS.Z (R10), K2, Z2
	VMOVUPS.Z (R11), K2, Z3
	VMULPS Z1, Z0, Z4
	VMULPS Z3, Z4, Z4
	VMOVUPS Z4, K2, (R8)
	VSUBPS Z3, Z27, Z5
	VMULPS Z5, Z1, Z5
	VADDPS Z5, Z27, Z5
	VMULPS Z2, Z0, Z6
	VMULPS Z3, Z6, Z6
	VMULPS Z5, Z6, Z6
	VMOVUPS Z6, K2, (DI)

sgdone:
	VZEROUPPER
	RET

// func sumSquaresAVX512(x *float32, n int) float64
TEXT ·sumSquaresAVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Z10, Z10, Z10
	VXORPD Z11, Z11, Z11

ssloop:
	CMPQ CX, $16
	JLT sstail
	VCVTPS2PD (SI), Z4
	VFMADD231PD Z4, Z4, Z10 // exact square, one rounding: as mul then add
	VCVTPS2PD 32(SI), Z5
	VFMADD231PD Z5, Z5, Z11
	ADDQ $64, SI
	SUBQ $16, CX
	JMP ssloop

sstail:
	TESTQ CX, CX
	JEQ ssdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z3
	VCVTPS2PD Y3, Z4
	VFMADD231PD Z4, Z4, Z10
	VEXTRACTF32X8 $1, Z3, Y5
	VCVTPS2PD Y5, Z5
	VFMADD231PD Z5, Z5, Z11

ssdone:
	REDUCE16
	VMOVSD X10, ret+16(FP)
	VZEROUPPER
	RET

// func scaleMulAVX512(out, x, w *float32, n int, r float32)
TEXT ·scaleMulAVX512(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS r+32(FP), Z7

smloop:
	CMPQ CX, $16
	JLT smtail
	VMULPS (SI), Z7, Z0
	VMULPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP smloop

smtail:
	TESTQ CX, CX
	JEQ smdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (DX), K2, Z1
	VMULPS Z0, Z7, Z0
	VMULPS Z1, Z0, Z0
	VMOVUPS Z0, K2, (DI)

smdone:
	VZEROUPPER
	RET

// func addSumSquaresAVX512(dst, x, y *float32, n int) float64
TEXT ·addSumSquaresAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ n+24(FP), CX
	VXORPD Z10, Z10, Z10
	VXORPD Z11, Z11, Z11

asloop:
	CMPQ CX, $16
	JLT astail
	VMOVUPS (SI), Z3
	VADDPS (DX), Z3, Z3
	VMOVUPS Z3, (DI)
	VCVTPS2PD Y3, Z4
	VFMADD231PD Z4, Z4, Z10
	VEXTRACTF32X8 $1, Z3, Y5
	VCVTPS2PD Y5, Z5
	VFMADD231PD Z5, Z5, Z11
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP asloop

astail:
	TESTQ CX, CX
	JEQ asdone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z3
	VMOVUPS.Z (DX), K2, Z4
	VADDPS Z4, Z3, Z3
	VMOVUPS Z3, K2, (DI)
	VCVTPS2PD Y3, Z4
	VFMADD231PD Z4, Z4, Z10
	VEXTRACTF32X8 $1, Z3, Y5
	VCVTPS2PD Y5, Z5
	VFMADD231PD Z5, Z5, Z11

asdone:
	REDUCE16
	VMOVSD X10, ret+32(FP)
	VZEROUPPER
	RET

// func rmsGradDotAVX512(dout, x, w *float32, n int, r float32) float64
TEXT ·rmsGradDotAVX512(SB), NOSPLIT, $0-48
	MOVQ dout+0(FP), SI
	MOVQ x+8(FP), DX
	MOVQ w+16(FP), BX
	MOVQ n+24(FP), CX
	VBROADCASTSS r+32(FP), Z7
	VXORPD Z10, Z10, Z10
	VXORPD Z11, Z11, Z11

rdloop:
	CMPQ CX, $16
	JLT rdtail
	VMOVUPS (SI), Z3
	VMULPS (BX), Z3, Z3 // dout·w
	VMULPS (DX), Z3, Z3 // ·x
	VMULPS Z7, Z3, Z3   // ·r
	ACC16
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, BX
	SUBQ $16, CX
	JMP rdloop

rdtail:
	TESTQ CX, CX
	JEQ rddone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z3
	VMOVUPS.Z (BX), K2, Z4
	VMULPS Z4, Z3, Z3
	VMOVUPS.Z (DX), K2, Z4
	VMULPS Z4, Z3, Z3
	VMULPS Z7, Z3, Z3
	ACC16

rddone:
	REDUCE16
	VMOVSD X10, ret+40(FP)
	VZEROUPPER
	RET

// func rmsGradAddAVX512(dx, dout, x, w *float32, n int, r, c float32)
TEXT ·rmsGradAddAVX512(SB), NOSPLIT, $0-48
	MOVQ dx+0(FP), DI
	MOVQ dout+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ w+24(FP), BX
	MOVQ n+32(FP), CX
	VBROADCASTSS r+40(FP), Z7
	VBROADCASTSS c+44(FP), Z8

raloop:
	CMPQ CX, $16
	JLT ratail
	VMOVUPS (SI), Z0
	VMULPS (BX), Z0, Z0 // dout·w
	VMULPS (DX), Z7, Z1 // x·r
	VMULPS Z8, Z1, Z1   // ·c
	VSUBPS Z1, Z0, Z0
	VMULPS Z0, Z7, Z0   // r·(…)
	VADDPS (DI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, BX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP raloop

ratail:
	TESTQ CX, CX
	JEQ radone
	TAILMASK
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (BX), K2, Z2
	VMULPS Z2, Z0, Z0
	VMOVUPS.Z (DX), K2, Z1
	VMULPS Z1, Z7, Z1
	VMULPS Z8, Z1, Z1
	VSUBPS Z1, Z0, Z0
	VMULPS Z0, Z7, Z0
	VMOVUPS.Z (DI), K2, Z2
	VADDPS Z2, Z0, Z0
	VMOVUPS Z0, K2, (DI)

radone:
	VZEROUPPER
	RET

DATA vfmask<>+0(SB)/8, $0x9e3779b97f4a7c15
DATA vfmask<>+8(SB)/8, $0xbf58476d1ce4e5b9
DATA vfmask<>+16(SB)/8, $0x94d049bb133111eb
DATA vfmask<>+24(SB)/8, $0xa0761d6478bd642f
DATA vfmask<>+32(SB)/8, $0xe7037ed1a0b428db
DATA vfmask<>+40(SB)/8, $0x8000800080008000
DATA vfmask<>+48(SB)/8, $0x00000000ffffffff
DATA vfmask<>+56(SB)/8, $0x000000000000000f
DATA vfmask<>+64(SB)/8, $8
GLOBL vfmask<>(SB), RODATA|NOPTR, $72

DATA vfiota64<>+0(SB)/8, $0
DATA vfiota64<>+8(SB)/8, $1
DATA vfiota64<>+16(SB)/8, $2
DATA vfiota64<>+24(SB)/8, $3
DATA vfiota64<>+32(SB)/8, $4
DATA vfiota64<>+40(SB)/8, $5
DATA vfiota64<>+48(SB)/8, $6
DATA vfiota64<>+56(SB)/8, $7
GLOBL vfiota64<>(SB), RODATA|NOPTR, $64

// func dropoutMaskAVX512(mask *uint64, n int, w0, key, t4 uint64)
// Eight words per vector, one per 64-bit lane. The high half of s·b is
// built from 32×32→64-bit products: with s = s1·2³² + s0, b = b1·2³² + b0,
// mid = (s0b0 >> 32) + lo32(s0b1) + lo32(s1b0) and
// hi = s1b1 + (s0b1 >> 32) + (s1b0 >> 32) + (mid >> 32).
TEXT ·dropoutMaskAVX512(SB), NOSPLIT, $0-40
	MOVQ mask+0(FP), DI
	MOVQ n+8(FP), CX
	VPBROADCASTQ w0+16(FP), Z30
	VPADDQ vfiota64<>(SB), Z30, Z30      // word indices
	VPBROADCASTQ key+24(FP), Z29
	VPBROADCASTQ t4+32(FP), Z28
	VPBROADCASTQ vfmask<>+0(SB), Z20
	VPBROADCASTQ vfmask<>+8(SB), Z21
	VPBROADCASTQ vfmask<>+16(SB), Z22
	VPBROADCASTQ vfmask<>+24(SB), Z23
	VPBROADCASTQ vfmask<>+32(SB), Z24
	VPBROADCASTQ vfmask<>+40(SB), Z25
	VPBROADCASTQ vfmask<>+48(SB), Z26
	VPBROADCASTQ vfmask<>+56(SB), Z27
	VPBROADCASTQ vfmask<>+64(SB), Z19

mkloop:
	TESTQ CX, CX
	JEQ mkdone
	// splitmix64(key + w·φ)
	VPMULLQ Z20, Z30, Z0
	VPADDQ Z29, Z0, Z0
	VPSRLQ $30, Z0, Z1
	VPXORQ Z1, Z0, Z0
	VPMULLQ Z21, Z0, Z0
	VPSRLQ $27, Z0, Z1
	VPXORQ Z1, Z0, Z0
	VPMULLQ Z22, Z0, Z0
	VPSRLQ $31, Z0, Z1
	VPXORQ Z1, Z0, Z0       // s
	VPXORQ Z18, Z18, Z18    // keep
	MOVQ $16, DX

mkdraw:
	VPADDQ Z23, Z0, Z0      // s += …
	VPXORQ Z24, Z0, Z1      // b = s ^ …
	VPMULLQ Z1, Z0, Z2      // lo
	VPSRLQ $32, Z0, Z3      // s1
	VPSRLQ $32, Z1, Z4      // b1
	VPMULUDQ Z1, Z0, Z5     // s0b0
	VPMULUDQ Z4, Z0, Z6     // s0b1
	VPMULUDQ Z1, Z3, Z7     // s1b0
	VPMULUDQ Z4, Z3, Z8     // s1b1
	VPSRLQ $32, Z5, Z5
	VPANDQ Z26, Z6, Z9
	VPANDQ Z26, Z7, Z10
	VPADDQ Z9, Z5, Z5
	VPADDQ Z10, Z5, Z5      // mid
	VPSRLQ $32, Z6, Z6
	VPSRLQ $32, Z7, Z7
	VPSRLQ $32, Z5, Z5
	VPADDQ Z6, Z8, Z8
	VPADDQ Z7, Z8, Z8
	VPADDQ Z5, Z8, Z8       // hi
	VPXORQ Z2, Z8, Z8       // r = hi ^ lo
	VPORQ Z25, Z8, Z8       // lanes with their top bit set
	VPSUBQ Z28, Z8, Z8
	VPANDQ Z25, Z8, Z8      // m: bits 15, 31, 47, 63
	VPSRLQ $15, Z8, Z9
	VPSRLQ $30, Z8, Z10
	VPSRLQ $45, Z8, Z11
	VPSRLQ $60, Z8, Z12
	VPORQ Z10, Z9, Z9
	VPORQ Z12, Z11, Z11
	VPORQ Z11, Z9, Z9
	VPANDQ Z27, Z9, Z9      // four keep-bits
	VPSRLQ $4, Z18, Z18     // draw q ends at bits 4q..4q+3
	VPSLLQ $60, Z9, Z9
	VPORQ Z9, Z18, Z18
	DECQ DX
	JNE mkdraw

	VMOVDQU64 Z18, (DI)
	VPADDQ Z19, Z30, Z30
	ADDQ $64, DI
	SUBQ $8, CX
	JMP mkloop

mkdone:
	VZEROUPPER
	RET

// func rotateHalfAVX512(x, cos, sin *float32, heads, h int, sign float32)
TEXT ·rotateHalfAVX512(SB), NOSPLIT, $0-44
	MOVQ x+0(FP), DI
	MOVQ cos+8(FP), SI
	MOVQ sin+16(FP), DX
	MOVQ heads+24(FP), R9
	MOVQ h+32(FP), R12
	VBROADCASTSS sign+40(FP), Z31
	SHLQ $2, R12            // half a head, bytes

rhhead:
	XORQ AX, AX             // byte offset within the half

rhvec:
	VMOVUPS (SI)(AX*1), Z2  // c
	VMULPS (DX)(AX*1), Z31, Z3 // ±s
	LEAQ (DI)(AX*1), R8
	VMOVUPS (R8), Z0        // x1
	VMOVUPS (R8)(R12*1), Z1 // x2
	VMULPS Z2, Z0, Z4       // x1·c
	VMULPS Z3, Z1, Z5       // x2·s
	VSUBPS Z5, Z4, Z4
	VMULPS Z2, Z1, Z6       // x2·c
	VMULPS Z3, Z0, Z7       // x1·s
	VADDPS Z7, Z6, Z6
	VMOVUPS Z4, (R8)
	VMOVUPS Z6, (R8)(R12*1)
	ADDQ $64, AX
	CMPQ AX, R12
	JLT rhvec
	LEAQ (DI)(R12*2), DI    // next head
	DECQ R9
	JNE rhhead
	VZEROUPPER
	RET

// func maxAVX512(x *float32, n int) float32
// Lane maxima (x > max, so NaN never enters), then the lanes folded.
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS vfc<>+52(SB), Z7 // -Inf
	VMOVAPS Z7, Z0

mxoloop:
	CMPQ CX, $16
	JLT mxotail
	VMOVUPS (SI), Z1
	VCMPPS $0x1e, Z0, Z1, K1
	VMOVAPS Z1, K1, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP mxoloop

mxotail:
	TESTQ CX, CX
	JEQ mxodone
	TAILMASK
	VMOVAPS Z7, Z1
	VMOVUPS (SI), K2, Z1
	VCMPPS $0x1e, Z0, Z1, K1
	VMOVAPS Z1, K1, Z0

mxodone:
	VEXTRACTF32X8 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// GRAD16 computes from dout Z10, g Z0, u Z11, s Z3: du Z12 = dout·g·s and
// dg Z13 = dout·u·s·(1 + g·(1 − s)) (Z14 scratch).
#define GRAD16 \
	VMULPS Z0, Z10, Z12; \
	VMULPS Z3, Z12, Z12; \
	VSUBPS Z3, Z27, Z14; \
	VMULPS Z14, Z0, Z14; \
	VADDPS Z14, Z27, Z14; \
	VMULPS Z11, Z10, Z13; \
	VMULPS Z3, Z13, Z13; \
	VMULPS Z14, Z13, Z13

// func swigluGradSigAVX512(dg, du, dout, gate, up *float32, n int)
TEXT ·swigluGradSigAVX512(SB), NOSPLIT, $0-48
	MOVQ dg+0(FP), DI
	MOVQ du+8(FP), R8
	MOVQ dout+16(FP), SI
	MOVQ gate+24(FP), R9
	MOVQ up+32(FP), R10
	MOVQ n+40(FP), CX
	EXPCONSTS(vfc)
	VBROADCASTSS vfc<>+48(SB), Z28
	VXORPS Z29, Z29, Z29

gsloop:
	CMPQ CX, $16
	JLT gstail
	VMOVUPS (R9), Z0
	VMOVUPS (SI), Z10
	VMOVUPS (R10), Z11
	SIG16
	GRAD16
	VMOVUPS Z12, (R8)
	VMOVUPS Z13, (DI)
	ADDQ $64, SI
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R8
	ADDQ $64, DI
	SUBQ $16, CX
	JMP gsloop

gstail:
	TESTQ CX, CX
	JEQ gsdone
	TAILMASK
	VMOVUPS.Z (R9), K2, Z0
	VMOVUPS.Z (SI), K2, Z10
	VMOVUPS.Z (R10), K2, Z11
	SIG16
	GRAD16
	VMOVUPS Z12, K2, (R8)
	VMOVUPS Z13, K2, (DI)

gsdone:
	VZEROUPPER
	RET
