//go:build amd64 && !purego

#include "textflag.h"
#include "vexp_amd64.h"

// AVX-512 kernels of via3.go. The sigmoid is swigluAVX512's (vfused_amd64.s)
// step for step, with the exp of vexp_amd64.h, so the
// results are bit-identical to SwiGLU and SwiGLUGrad.

EXPTABLE(via3c)
GLOBL via3c<>(SB), RODATA|NOPTR, $52

// COLUMNS splits the row length n (the operand narg) into CX, the bytes
// of its whole vectors, and AX, the columns of its tail, with K2 the tail
// mask.
#define COLUMNS(narg) \
	MOVQ narg, CX; \
	ANDQ $15, CX; \
	MOVQ $1, AX; \
	SHLQ CX, AX; \
	DECQ AX; \
	KMOVW AX, K2; \
	MOVQ CX, AX; \
	MOVQ narg, CX; \
	ANDQ $-16, CX; \
	SHLQ $2, CX

// CONSTS loads the exp constants into Z16–Z27, the sign bit into Z28 and
// zero into Z29.
#define CONSTS \
	EXPCONSTS(via3c); \
	VBROADCASTSS via3c<>+48(SB), Z28; \
	VXORPS Z29, Z29, Z29

// SCALEGRAD16 takes g Z0, u Z11, dy Z15, l Z9, dl Z8 and s = σ(g) Z3: it
// sets Z8 = dl + dy·(g·s·u), d = dy·l, du Z12 = d·g·s and
// dg Z13 = d·u·s·(1 + g·(1 − s)) (Z7, Z10, Z14 scratch), as SwiGLU, the
// scale and SwiGLUGrad round them.
#define SCALEGRAD16 \
	VMULPS Z3, Z0, Z7; \
	VMULPS Z11, Z7, Z7; \
	VMULPS Z7, Z15, Z7; \
	VADDPS Z7, Z8, Z8; \
	VMULPS Z9, Z15, Z10; \
	VMULPS Z0, Z10, Z12; \
	VMULPS Z3, Z12, Z12; \
	VSUBPS Z3, Z27, Z14; \
	VMULPS Z14, Z0, Z14; \
	VADDPS Z14, Z27, Z14; \
	VMULPS Z11, Z10, Z13; \
	VMULPS Z3, Z13, Z13; \
	VMULPS Z14, Z13, Z13

// func swigluScaleAVX512(out, gate, up, l *float32, n int)
TEXT ·swigluScaleAVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), R9
	MOVQ l+24(FP), R10
	MOVQ n+32(FP), CX
	CONSTS

ssloop:
	CMPQ CX, $16
	JLT sstail
	VMOVUPS (SI), Z0
	VMOVUPS (R9), Z11
	VMOVUPS (R10), Z9
	SIG16
	VMULPS Z3, Z0, Z7 // g·σ
	VMULPS Z11, Z7, Z7 // ·u
	VMULPS Z9, Z7, Z7 // ·l
	VMOVUPS Z7, (DI)
	ADDQ $64, SI
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, DI
	SUBQ $16, CX
	JMP ssloop

sstail:
	TESTQ CX, CX
	JEQ ssdone
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K2
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (R9), K2, Z11
	VMOVUPS.Z (R10), K2, Z9
	SIG16
	VMULPS Z3, Z0, Z7
	VMULPS Z11, Z7, Z7
	VMULPS Z9, Z7, Z7
	VMOVUPS Z7, K2, (DI)

ssdone:
	VZEROUPPER
	RET

// func swigluScaleGradAVX512(dg, du, dl, dy, gate, up, l *float32, rows, stride, n int)
//
// Row by row (bases DI dg, R8 du, SI dy, R9 g, R10 u advanced by the
// stride), the columns in vectors of 16 (offset R13 up to CX bytes) and a
// masked tail of AX columns (mask K2); dl (BX) and l (DX) are reread each
// row from L1.
TEXT ·swigluScaleGradAVX512(SB), NOSPLIT, $0-80
	MOVQ dg+0(FP), DI
	MOVQ du+8(FP), R8
	MOVQ dl+16(FP), BX
	MOVQ dy+24(FP), SI
	MOVQ gate+32(FP), R9
	MOVQ up+40(FP), R10
	MOVQ l+48(FP), DX
	MOVQ rows+56(FP), R11
	MOVQ stride+64(FP), R12
	SHLQ $2, R12
	COLUMNS(n+72(FP))
	CONSTS

sgrow:
	XORQ R13, R13

sgvec:
	CMPQ R13, CX
	JGE sgtail
	VMOVUPS (R9)(R13*1), Z0
	VMOVUPS (R10)(R13*1), Z11
	VMOVUPS (SI)(R13*1), Z15
	VMOVUPS (DX)(R13*1), Z9
	VMOVUPS (BX)(R13*1), Z8
	SIG16
	SCALEGRAD16
	VMOVUPS Z8, (BX)(R13*1)
	VMOVUPS Z12, (R8)(R13*1)
	VMOVUPS Z13, (DI)(R13*1)
	ADDQ $64, R13
	JMP sgvec

sgtail:
	TESTQ AX, AX
	JEQ sgnext
	VMOVUPS.Z (R9)(R13*1), K2, Z0
	VMOVUPS.Z (R10)(R13*1), K2, Z11
	VMOVUPS.Z (SI)(R13*1), K2, Z15
	VMOVUPS.Z (DX)(R13*1), K2, Z9
	VMOVUPS.Z (BX)(R13*1), K2, Z8
	SIG16
	SCALEGRAD16
	VMOVUPS Z8, K2, (BX)(R13*1)
	VMOVUPS Z12, K2, (R8)(R13*1)
	VMOVUPS Z13, K2, (DI)(R13*1)

sgnext:
	ADDQ R12, DI
	ADDQ R12, R8
	ADDQ R12, SI
	ADDQ R12, R9
	ADDQ R12, R10
	DECQ R11
	JNZ sgrow
	VZEROUPPER
	RET

// func scaleGradAVX512(dx, dl, dy, x, l *float32, rows, stride, n int)
//
// As swigluScaleGradAVX512: row bases DI dx, SI dy, R9 x advanced by the
// stride, column offset R13 up to CX bytes, a masked tail of AX columns;
// dl (BX, nil: not accumulated) and l (DX) reread each row.
TEXT ·scaleGradAVX512(SB), NOSPLIT, $0-64
	MOVQ dx+0(FP), DI
	MOVQ dl+8(FP), BX
	MOVQ dy+16(FP), SI
	MOVQ x+24(FP), R9
	MOVQ l+32(FP), DX
	MOVQ rows+40(FP), R11
	MOVQ stride+48(FP), R12
	SHLQ $2, R12
	COLUMNS(n+56(FP))
	TESTQ BX, BX
	JEQ nlrow

glrow:
	XORQ R13, R13

glvec:
	CMPQ R13, CX
	JGE gltail
	VMOVUPS (SI)(R13*1), Z0
	VMULPS (R9)(R13*1), Z0, Z1
	VADDPS (BX)(R13*1), Z1, Z1
	VMOVUPS Z1, (BX)(R13*1)
	VMULPS (DX)(R13*1), Z0, Z2
	VMOVUPS Z2, (DI)(R13*1)
	ADDQ $64, R13
	JMP glvec

gltail:
	TESTQ AX, AX
	JEQ glnext
	VMOVUPS.Z (SI)(R13*1), K2, Z0
	VMOVUPS.Z (R9)(R13*1), K2, Z3
	VMOVUPS.Z (BX)(R13*1), K2, Z4
	VMOVUPS.Z (DX)(R13*1), K2, Z5
	VMULPS Z3, Z0, Z1
	VADDPS Z4, Z1, Z1
	VMOVUPS Z1, K2, (BX)(R13*1)
	VMULPS Z5, Z0, Z2
	VMOVUPS Z2, K2, (DI)(R13*1)

glnext:
	ADDQ R12, DI
	ADDQ R12, SI
	ADDQ R12, R9
	DECQ R11
	JNZ glrow
	VZEROUPPER
	RET

nlrow:
	XORQ R13, R13

nlvec:
	CMPQ R13, CX
	JGE nltail
	VMOVUPS (SI)(R13*1), Z0
	VMULPS (DX)(R13*1), Z0, Z2
	VMOVUPS Z2, (DI)(R13*1)
	ADDQ $64, R13
	JMP nlvec

nltail:
	TESTQ AX, AX
	JEQ nlnext
	VMOVUPS.Z (SI)(R13*1), K2, Z0
	VMOVUPS.Z (DX)(R13*1), K2, Z5
	VMULPS Z5, Z0, Z2
	VMOVUPS Z2, K2, (DI)(R13*1)

nlnext:
	ADDQ R12, DI
	ADDQ R12, SI
	DECQ R11
	JNZ nlrow
	VZEROUPPER
	RET
