//go:build amd64 && !purego

#include "textflag.h"

// REDUCE16 sums the 16 lanes of Z into its lowest float and stores it at
// dst, in a fixed order (halves, then quarters, ...). T is scratch.
#define REDUCE16(Z, Y, X, T, TY, TX, dst) \
	VEXTRACTF64X4 $1, Z, TY \
	VADDPS TY, Y, Y \
	VEXTRACTF128 $1, Y, TX \
	VADDPS TX, X, X \
	VMOVHLPS X, X, TX \
	VADDPS TX, X, X \
	VMOVSHDUP X, TX \
	VADDSS TX, X, X \
	VMOVSS X, dst

// func gemv4AVX512(w *float32, ldw int, x *float32, n int, y *float32)
//
// y[r] = Σ_i w[r·ldw + i]·x[i] for r = 0..3. Each row sums into two
// accumulators (alternate 16-float chunks; a last whole chunk into the
// first, the masked remainder into the second), added and then reduced
// by REDUCE16: the order depends on n alone, so a row gives the same
// result whichever group of four it is computed in (ldw = 0 repeats one
// row). Rows are read with masked loads, never past their n floats.
TEXT ·gemv4AVX512(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ y+32(FP), DI
	LEAQ (SI)(BX*1), R8
	LEAQ (R8)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	XORQ AX, AX
	MOVQ CX, R11
	ANDQ $-32, R11
	SHLQ $2, R11

loop:
	CMPQ AX, R11
	JGE tail
	VMOVUPS (DX)(AX*1), Z8
	VMOVUPS 64(DX)(AX*1), Z9
	VFMADD231PS (SI)(AX*1), Z8, Z0
	VFMADD231PS 64(SI)(AX*1), Z9, Z1
	VFMADD231PS (R8)(AX*1), Z8, Z2
	VFMADD231PS 64(R8)(AX*1), Z9, Z3
	VFMADD231PS (R9)(AX*1), Z8, Z4
	VFMADD231PS 64(R9)(AX*1), Z9, Z5
	VFMADD231PS (R10)(AX*1), Z8, Z6
	VFMADD231PS 64(R10)(AX*1), Z9, Z7
	ADDQ $128, AX
	JMP loop

tail:
	MOVQ CX, R12
	ANDQ $31, R12
	CMPQ R12, $16
	JLT masked
	VMOVUPS (DX)(AX*1), Z8
	VFMADD231PS (SI)(AX*1), Z8, Z0
	VFMADD231PS (R8)(AX*1), Z8, Z2
	VFMADD231PS (R9)(AX*1), Z8, Z4
	VFMADD231PS (R10)(AX*1), Z8, Z6
	ADDQ $64, AX
	SUBQ $16, R12

masked:
	MOVQ R12, CX
	MOVL $1, R13
	SHLL CX, R13
	DECL R13
	KMOVW R13, K1
	VMOVUPS.Z (DX)(AX*1), K1, Z8
	VMOVUPS.Z (SI)(AX*1), K1, Z9
	VFMADD231PS Z9, Z8, Z1
	VMOVUPS.Z (R8)(AX*1), K1, Z9
	VFMADD231PS Z9, Z8, Z3
	VMOVUPS.Z (R9)(AX*1), K1, Z9
	VFMADD231PS Z9, Z8, Z5
	VMOVUPS.Z (R10)(AX*1), K1, Z9
	VFMADD231PS Z9, Z8, Z7

	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z5, Z4, Z4
	VADDPS Z7, Z6, Z6
	REDUCE16(Z0, Y0, X0, Z8, Y8, X8, 0(DI))
	REDUCE16(Z2, Y2, X2, Z8, Y8, X8, 4(DI))
	REDUCE16(Z4, Y4, X4, Z8, Y8, X8, 8(DI))
	REDUCE16(Z6, Y6, X6, Z8, Y8, X8, 12(DI))
	VZEROUPPER
	RET

// func gemvRowsAVX512(w *float32, ldw int, x *float32, n int, y *float32, rows int)
//
// y[r] = Σ_i w[r·ldw + i]·x[i] for r = 0..rows−1, one row after the
// other, so that W is read as one sequential stream: on AMD Zen 4 that
// reads memory about twice as fast as gemv4AVX512's four interleaved
// rows when rows are short (576 floats: 29–31 against 14 GB/s). Each row
// is summed exactly as gemv4AVX512 sums it (two accumulators over
// alternate 16-float chunks, a last whole chunk into the first, the
// masked remainder into the second, added, REDUCE16), so the results are
// bit-identical. rows ≥ 1, n ≥ 1.
TEXT ·gemvRowsAVX512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ y+32(FP), DI
	MOVQ rows+40(FP), R9
	MOVQ CX, R11
	ANDQ $-32, R11
	SHLQ $2, R11
	// K1: the mask of the n mod 16 floats after the last whole chunk.
	MOVQ CX, R12
	ANDQ $15, R12
	MOVQ R12, CX
	MOVL $1, R13
	SHLL CX, R13
	DECL R13
	KMOVW R13, K1
	MOVQ n+24(FP), R12
	ANDQ $31, R12 // n mod 32: ≥ 16 means one more whole chunk

row:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	XORQ AX, AX

rloop:
	CMPQ AX, R11
	JGE rtail
	VMOVUPS (DX)(AX*1), Z8
	VMOVUPS 64(DX)(AX*1), Z9
	VFMADD231PS (SI)(AX*1), Z8, Z0
	VFMADD231PS 64(SI)(AX*1), Z9, Z1
	ADDQ $128, AX
	JMP rloop

rtail:
	CMPQ R12, $16
	JLT rmasked
	VMOVUPS (DX)(AX*1), Z8
	VFMADD231PS (SI)(AX*1), Z8, Z0
	ADDQ $64, AX

rmasked:
	VMOVUPS.Z (DX)(AX*1), K1, Z8
	VMOVUPS.Z (SI)(AX*1), K1, Z9
	VFMADD231PS Z9, Z8, Z1
	VADDPS Z1, Z0, Z0
	REDUCE16(Z0, Y0, X0, Z8, Y8, X8, 0(DI))
	ADDQ BX, SI
	ADDQ $4, DI
	DECQ R9
	JNZ row
	VZEROUPPER
	RET

// gemvMask holds eight −1s then eight 0s: the eight int32 at offset
// 4·(8−r) are a VMASKMOVPS mask for the first r floats.
DATA gemvMask<>+0(SB)/8, $-1
DATA gemvMask<>+8(SB)/8, $-1
DATA gemvMask<>+16(SB)/8, $-1
DATA gemvMask<>+24(SB)/8, $-1
DATA gemvMask<>+32(SB)/8, $0
DATA gemvMask<>+40(SB)/8, $0
DATA gemvMask<>+48(SB)/8, $0
DATA gemvMask<>+56(SB)/8, $0
GLOBL gemvMask<>(SB), RODATA|NOPTR, $64

// REDUCE8 sums the 8 lanes of Y into its lowest float and stores it.
#define REDUCE8(Y, X, TX, dst) \
	VEXTRACTF128 $1, Y, TX \
	VADDPS TX, X, X \
	VMOVHLPS X, X, TX \
	VADDPS TX, X, X \
	VMOVSHDUP X, TX \
	VADDSS TX, X, X \
	VMOVSS X, dst

// func gemv4AVX2(w *float32, ldw int, x *float32, n int, y *float32)
//
// gemv4AVX512 with 8-float vectors: two accumulators per row over
// alternate 8-float chunks, a last whole chunk into the first, the
// masked remainder (VMASKMOVPS, which never reads past it) into the second.
TEXT ·gemv4AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ ldw+8(FP), BX
	SHLQ $2, BX
	MOVQ x+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ y+32(FP), DI
	LEAQ (SI)(BX*1), R8
	LEAQ (R8)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
	MOVQ CX, R11
	ANDQ $-16, R11
	SHLQ $2, R11

loop2:
	CMPQ AX, R11
	JGE tail2
	VMOVUPS (DX)(AX*1), Y8
	VMOVUPS 32(DX)(AX*1), Y9
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VFMADD231PS 32(SI)(AX*1), Y9, Y1
	VFMADD231PS (R8)(AX*1), Y8, Y2
	VFMADD231PS 32(R8)(AX*1), Y9, Y3
	VFMADD231PS (R9)(AX*1), Y8, Y4
	VFMADD231PS 32(R9)(AX*1), Y9, Y5
	VFMADD231PS (R10)(AX*1), Y8, Y6
	VFMADD231PS 32(R10)(AX*1), Y9, Y7
	ADDQ $64, AX
	JMP loop2

tail2:
	MOVQ CX, R12
	ANDQ $15, R12
	CMPQ R12, $8
	JLT masked2
	VMOVUPS (DX)(AX*1), Y8
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VFMADD231PS (R8)(AX*1), Y8, Y2
	VFMADD231PS (R9)(AX*1), Y8, Y4
	VFMADD231PS (R10)(AX*1), Y8, Y6
	ADDQ $32, AX
	SUBQ $8, R12

masked2:
	CMPQ R12, $0
	JEQ reduce2
	LEAQ gemvMask<>+32(SB), R13
	SHLQ $2, R12
	SUBQ R12, R13
	VMOVDQU (R13), Y10
	VMASKMOVPS (DX)(AX*1), Y10, Y8
	VMASKMOVPS (SI)(AX*1), Y10, Y9
	VFMADD231PS Y9, Y8, Y1
	VMASKMOVPS (R8)(AX*1), Y10, Y9
	VFMADD231PS Y9, Y8, Y3
	VMASKMOVPS (R9)(AX*1), Y10, Y9
	VFMADD231PS Y9, Y8, Y5
	VMASKMOVPS (R10)(AX*1), Y10, Y9
	VFMADD231PS Y9, Y8, Y7

reduce2:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	REDUCE8(Y0, X0, X8, 0(DI))
	REDUCE8(Y2, X2, X8, 4(DI))
	REDUCE8(Y4, X4, X8, 8(DI))
	REDUCE8(Y6, X6, X8, 12(DI))
	VZEROUPPER
	RET

// func gemv1x4AVX512(w, x0, x1, x2, x3 *float32, n int, y *float32)
//
// y[v] = Σ_i w[i]·xv[i] for the four vectors x0..x3 (which may repeat):
// one row of W read once for up to four tokens. Each (row, vector) sum
// runs in exactly the order of gemv4AVX512, so the results are
// bit-identical to it.
TEXT ·gemv1x4AVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ x0+8(FP), R8
	MOVQ x1+16(FP), R9
	MOVQ x2+24(FP), R10
	MOVQ x3+32(FP), R11
	MOVQ n+40(FP), CX
	MOVQ y+48(FP), DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	XORQ AX, AX
	MOVQ CX, BX
	ANDQ $-32, BX
	SHLQ $2, BX

loopx4:
	CMPQ AX, BX
	JGE tailx4
	VMOVUPS (SI)(AX*1), Z8
	VMOVUPS 64(SI)(AX*1), Z9
	VFMADD231PS (R8)(AX*1), Z8, Z0
	VFMADD231PS 64(R8)(AX*1), Z9, Z1
	VFMADD231PS (R9)(AX*1), Z8, Z2
	VFMADD231PS 64(R9)(AX*1), Z9, Z3
	VFMADD231PS (R10)(AX*1), Z8, Z4
	VFMADD231PS 64(R10)(AX*1), Z9, Z5
	VFMADD231PS (R11)(AX*1), Z8, Z6
	VFMADD231PS 64(R11)(AX*1), Z9, Z7
	ADDQ $128, AX
	JMP loopx4

tailx4:
	MOVQ CX, R12
	ANDQ $31, R12
	CMPQ R12, $16
	JLT maskedx4
	VMOVUPS (SI)(AX*1), Z8
	VFMADD231PS (R8)(AX*1), Z8, Z0
	VFMADD231PS (R9)(AX*1), Z8, Z2
	VFMADD231PS (R10)(AX*1), Z8, Z4
	VFMADD231PS (R11)(AX*1), Z8, Z6
	ADDQ $64, AX
	SUBQ $16, R12

maskedx4:
	MOVQ R12, CX
	MOVL $1, R13
	SHLL CX, R13
	DECL R13
	KMOVW R13, K1
	VMOVUPS.Z (SI)(AX*1), K1, Z8
	VMOVUPS.Z (R8)(AX*1), K1, Z9
	VFMADD231PS Z8, Z9, Z1
	VMOVUPS.Z (R9)(AX*1), K1, Z9
	VFMADD231PS Z8, Z9, Z3
	VMOVUPS.Z (R10)(AX*1), K1, Z9
	VFMADD231PS Z8, Z9, Z5
	VMOVUPS.Z (R11)(AX*1), K1, Z9
	VFMADD231PS Z8, Z9, Z7

	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z5, Z4, Z4
	VADDPS Z7, Z6, Z6
	REDUCE16(Z0, Y0, X0, Z8, Y8, X8, 0(DI))
	REDUCE16(Z2, Y2, X2, Z8, Y8, X8, 4(DI))
	REDUCE16(Z4, Y4, X4, Z8, Y8, X8, 8(DI))
	REDUCE16(Z6, Y6, X6, Z8, Y8, X8, 12(DI))
	VZEROUPPER
	RET

// func gemv1x4AVX2(w, x0, x1, x2, x3 *float32, n int, y *float32)
//
// gemv1x4AVX512 with 8-float vectors, in the order of gemv4AVX2.
TEXT ·gemv1x4AVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ x0+8(FP), R8
	MOVQ x1+16(FP), R9
	MOVQ x2+24(FP), R10
	MOVQ x3+32(FP), R11
	MOVQ n+40(FP), CX
	MOVQ y+48(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
	MOVQ CX, BX
	ANDQ $-16, BX
	SHLQ $2, BX

loopx42:
	CMPQ AX, BX
	JGE tailx42
	VMOVUPS (SI)(AX*1), Y8
	VMOVUPS 32(SI)(AX*1), Y9
	VFMADD231PS (R8)(AX*1), Y8, Y0
	VFMADD231PS 32(R8)(AX*1), Y9, Y1
	VFMADD231PS (R9)(AX*1), Y8, Y2
	VFMADD231PS 32(R9)(AX*1), Y9, Y3
	VFMADD231PS (R10)(AX*1), Y8, Y4
	VFMADD231PS 32(R10)(AX*1), Y9, Y5
	VFMADD231PS (R11)(AX*1), Y8, Y6
	VFMADD231PS 32(R11)(AX*1), Y9, Y7
	ADDQ $64, AX
	JMP loopx42

tailx42:
	MOVQ CX, R12
	ANDQ $15, R12
	CMPQ R12, $8
	JLT maskedx42
	VMOVUPS (SI)(AX*1), Y8
	VFMADD231PS (R8)(AX*1), Y8, Y0
	VFMADD231PS (R9)(AX*1), Y8, Y2
	VFMADD231PS (R10)(AX*1), Y8, Y4
	VFMADD231PS (R11)(AX*1), Y8, Y6
	ADDQ $32, AX
	SUBQ $8, R12

maskedx42:
	CMPQ R12, $0
	JEQ reducex42
	LEAQ gemvMask<>+32(SB), R13
	SHLQ $2, R12
	SUBQ R12, R13
	VMOVDQU (R13), Y10
	VMASKMOVPS (SI)(AX*1), Y10, Y8
	VMASKMOVPS (R8)(AX*1), Y10, Y9
	VFMADD231PS Y8, Y9, Y1
	VMASKMOVPS (R9)(AX*1), Y10, Y9
	VFMADD231PS Y8, Y9, Y3
	VMASKMOVPS (R10)(AX*1), Y10, Y9
	VFMADD231PS Y8, Y9, Y5
	VMASKMOVPS (R11)(AX*1), Y10, Y9
	VFMADD231PS Y8, Y9, Y7

reducex42:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	REDUCE8(Y0, X0, X8, 0(DI))
	REDUCE8(Y2, X2, X8, 4(DI))
	REDUCE8(Y4, X4, X8, 8(DI))
	REDUCE8(Y6, X6, X8, 12(DI))
	VZEROUPPER
	RET
