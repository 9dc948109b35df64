//go:build amd64 && !purego

#include "textflag.h"
#include "vexp_amd64.h"

// Vectorised exp, sigmoid and SiLU (see vmath.go for the algorithm; the
// constants are those of vmathConsts there, in the same order: words 0–12
// of the table are vexp_amd64.h's EXPTABLE, and the AVX-512 kernel runs
// its EXP16). Each routine handles n elements, n a multiple of the vector width; mode 0 is
// exp(x), 1 is sigmoid(x), 2 is x·sigmoid(x). Both kernels run the same
// operations in the same order, and VSCALEFPS and the two-step AVX2 scaling
// both round once, so they give bit-identical results.

EXPTABLE(vmc)
DATA vmc<>+52(SB)/4, $0x0000007f // exponent bias (int32)
GLOBL vmc<>(SB), RODATA|NOPTR, $56

// func vmathAVX512(dst, src *float32, n, mode int)
TEXT ·vmathAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ mode+24(FP), DX
	EXPCONSTS(vmc)
	VBROADCASTSS vmc<>+48(SB), Z28
	VXORPS Z29, Z29, Z29

loop512:
	CMPQ CX, $16
	JLT done512
	VMOVUPS (SI), Z0
	VMOVAPS Z0, Z1
	CMPQ DX, $0
	JEQ exp512
	VORPS Z28, Z0, Z1 // t = −|x|

exp512:
	EXP16
	CMPQ DX, $0
	JEQ store512
	// sigmoid: (x < 0 ? e : 1) / (1 + e); SiLU multiplies the numerator by x.
	VADDPS Z27, Z3, Z5
	VCMPPS $1, Z29, Z0, K1
	VMOVAPS Z27, Z6
	VMOVAPS Z3, K1, Z6
	CMPQ DX, $1
	JEQ div512
	VMULPS Z0, Z6, Z6

div512:
	VDIVPS Z5, Z6, Z3

store512:
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP loop512

done512:
	VZEROUPPER
	RET

// func vmathAVX2(dst, src *float32, n, mode int)
TEXT ·vmathAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ mode+24(FP), DX
	VBROADCASTSS vmc<>+0(SB), Y0
	VBROADCASTSS vmc<>+4(SB), Y1
	VBROADCASTSS vmc<>+8(SB), Y2
	VBROADCASTSS vmc<>+12(SB), Y3
	VBROADCASTSS vmc<>+16(SB), Y4
	VBROADCASTSS vmc<>+44(SB), Y5
	VBROADCASTSS vmc<>+48(SB), Y6
	VPBROADCASTD vmc<>+52(SB), Y7

loop2:
	CMPQ CX, $8
	JLT done2
	VMOVUPS (SI), Y8
	VMOVAPS Y8, Y9
	CMPQ DX, $0
	JEQ exp2
	VORPS Y6, Y8, Y9

exp2:
	VMINPS Y9, Y0, Y9
	VMAXPS Y9, Y1, Y9
	VMULPS Y2, Y9, Y10
	VROUNDPS $0, Y10, Y10
	VFMADD231PS Y3, Y10, Y9
	VFMADD231PS Y4, Y10, Y9
	VBROADCASTSS vmc<>+20(SB), Y11
	VBROADCASTSS vmc<>+24(SB), Y12
	VFMADD213PS Y12, Y9, Y11
	VBROADCASTSS vmc<>+28(SB), Y12
	VFMADD213PS Y12, Y9, Y11
	VBROADCASTSS vmc<>+32(SB), Y12
	VFMADD213PS Y12, Y9, Y11
	VBROADCASTSS vmc<>+36(SB), Y12
	VFMADD213PS Y12, Y9, Y11
	VBROADCASTSS vmc<>+40(SB), Y12
	VFMADD213PS Y12, Y9, Y11
	VMULPS Y9, Y9, Y12
	VFMADD213PS Y9, Y12, Y11
	VADDPS Y5, Y11, Y11
	// ·2^n as ·2^(n>>1)·2^(n−n>>1): the first product is exact, the
	// second rounds once, as VSCALEFPS does.
	VCVTPS2DQ Y10, Y10
	VPSRAD $1, Y10, Y12
	VPSUBD Y12, Y10, Y13
	VPADDD Y7, Y12, Y12
	VPADDD Y7, Y13, Y13
	VPSLLD $23, Y12, Y12
	VPSLLD $23, Y13, Y13
	VMULPS Y12, Y11, Y11
	VMULPS Y13, Y11, Y11
	CMPQ DX, $0
	JEQ store2
	VADDPS Y5, Y11, Y12
	VXORPS Y13, Y13, Y13
	VCMPPS $1, Y13, Y8, Y13
	VBLENDVPS Y13, Y11, Y5, Y14
	CMPQ DX, $1
	JEQ div2
	VMULPS Y8, Y14, Y14

div2:
	VDIVPS Y12, Y14, Y11

store2:
	VMOVUPS Y11, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP loop2

done2:
	VZEROUPPER
	RET
