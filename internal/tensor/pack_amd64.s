//go:build amd64 && !purego

#include "textflag.h"

// func packTransposedAVX(dst, src *float32, ld, rows, kc, w int)
// dst[p*w + r] = src[r*ld + p] for r < rows, p < kc (rows ≤ w).
// Reads each source row front to back, four floats at a time, and
// scatters them down the panel with stride w.
TEXT ·packTransposedAVX(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8             // source row stride in bytes
	MOVQ rows+24(FP), R9
	MOVQ kc+32(FP), R10
	MOVQ w+40(FP), R11
	SHLQ $2, R11            // panel step in bytes
	LEAQ (R11)(R11*2), R12  // 3 steps
	TESTQ R9, R9
	JZ tdone
trow:
	MOVQ SI, AX             // this row's source
	MOVQ DI, BX             // this row's column in the panel
	MOVQ R10, CX
	SHRQ $2, CX
	JZ ttail
tloop4:
	VMOVUPS (AX), X0
	VMOVSS X0, (BX)
	VEXTRACTPS $1, X0, (BX)(R11*1)
	VEXTRACTPS $2, X0, (BX)(R11*2)
	VEXTRACTPS $3, X0, (BX)(R12*1)
	ADDQ $16, AX
	LEAQ (BX)(R11*4), BX
	DECQ CX
	JNZ tloop4
ttail:
	MOVQ R10, CX
	ANDQ $3, CX
	JZ tnext
tloop1:
	MOVL (AX), DX
	MOVL DX, (BX)
	ADDQ $4, AX
	ADDQ R11, BX
	DECQ CX
	JNZ tloop1
tnext:
	ADDQ R8, SI
	ADDQ $4, DI
	DECQ R9
	JNZ trow
tdone:
	RET

// func packCopyAVX(dst, src *float32, ld, w, kc int)
// dst[p*w + j] = src[p*ld + j] for j < w, p < kc: kc rows of w floats
// copied into a dense panel.
TEXT ·packCopyAVX(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ w+24(FP), R9
	MOVQ kc+32(FP), R10
	TESTQ R10, R10
	JZ cdone
crow:
	MOVQ SI, AX
	MOVQ R9, CX
	CMPQ CX, $8
	JB c4
c8:
	VMOVUPS (AX), Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, AX
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE c8
c4:
	CMPQ CX, $4
	JB c1
	VMOVUPS (AX), X0
	VMOVUPS X0, (DI)
	ADDQ $16, AX
	ADDQ $16, DI
	SUBQ $4, CX
c1:
	TESTQ CX, CX
	JZ cnext
	MOVL (AX), DX
	MOVL DX, (DI)
	ADDQ $4, AX
	ADDQ $4, DI
	DECQ CX
	JMP c1
cnext:
	ADDQ R8, SI
	DECQ R10
	JNZ crow
	VZEROUPPER
cdone:
	RET

// func packTransposed8AVX(dst, src *float32, ld, kc8, w int)
// dst[p*w + r] = src[r*ld + p] for r < 8, p < kc8 (a multiple of 8):
// eight source rows, transposed eight steps at a time in registers.
TEXT ·packTransposed8AVX(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8                // source row stride, bytes
	LEAQ (R8)(R8*2), R9        // 3 rows
	MOVQ kc8+24(FP), CX
	SHRQ $3, CX
	JZ t8done
	MOVQ w+32(FP), R11
	SHLQ $2, R11               // panel step, bytes
	LEAQ (R11)(R11*2), R12     // 3 steps
t8loop:
	LEAQ (SI)(R8*4), AX
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (AX), Y4
	VMOVUPS (AX)(R8*1), Y5
	VMOVUPS (AX)(R8*2), Y6
	VMOVUPS (AX)(R9*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	LEAQ (DI)(R11*4), BX
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R11*1)
	VMOVUPS Y10, (DI)(R11*2)
	VMOVUPS Y11, (DI)(R12*1)
	VMOVUPS Y12, (BX)
	VMOVUPS Y13, (BX)(R11*1)
	VMOVUPS Y14, (BX)(R11*2)
	VMOVUPS Y15, (BX)(R12*1)
	ADDQ $32, SI
	LEAQ (BX)(R11*4), DI
	DECQ CX
	JNZ t8loop
	VZEROUPPER
t8done:
	RET

// func packCopyAVX512(dst, src *float32, ld, w, kc int)
// packCopyAVX for 0 < w ≤ 32 with AVX-512 masked moves: each row is one
// or two masked loads and stores (w = 14 for the A panels, 32 for B),
// never touching memory past its w floats.
TEXT ·packCopyAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ w+24(FP), R9
	MOVQ kc+32(FP), R10
	TESTQ R10, R10
	JZ xdone
	// K1: the first min(w, 16) lanes; K2: the next w − 16 (if any).
	MOVQ R9, CX
	CMPQ CX, $16
	JBE xlo
	MOVQ $16, CX
xlo:
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ R9, CX
	SUBQ $16, CX
	JBE xone
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	SHLQ $2, R9 // dst row, bytes
xrow2:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	ADDQ R8, SI
	ADDQ R9, DI
	DECQ R10
	JNZ xrow2
	VZEROUPPER
	RET
xone:
	SHLQ $2, R9
xrow1:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ R8, SI
	ADDQ R9, DI
	DECQ R10
	JNZ xrow1
	VZEROUPPER
xdone:
	RET

DATA bf16c<>+0(SB)/4, $0x00007fff
DATA bf16c<>+4(SB)/4, $0xffff0000
DATA bf16c<>+8(SB)/4, $0x7fffffff
DATA bf16c<>+12(SB)/4, $0x7f800000
DATA bf16c<>+16(SB)/4, $0x00400000
DATA bf16c<>+20(SB)/4, $0x00000001
GLOBL bf16c<>(SB), RODATA|NOPTR, $24

// func roundBF16AVX512(x *float32, n int)
// x[i] = roundBF16(x[i]) for n floats (n a multiple of 16), with the
// integer steps of ToBF16: add 0x7fff plus the lowest kept bit, clear the
// low half; NaNs keep their sign and get the quiet bit instead.
TEXT ·roundBF16AVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VPBROADCASTD bf16c<>+0(SB), Z16
	VPBROADCASTD bf16c<>+4(SB), Z17
	VPBROADCASTD bf16c<>+8(SB), Z18
	VPBROADCASTD bf16c<>+12(SB), Z19
	VPBROADCASTD bf16c<>+16(SB), Z20
	VPBROADCASTD bf16c<>+20(SB), Z21
rloop:
	CMPQ CX, $16
	JLT rdone
	VMOVDQU32 (DI), Z0
	VPSRLD $16, Z0, Z1
	VPANDD Z21, Z1, Z1
	VPADDD Z16, Z1, Z1
	VPADDD Z1, Z0, Z2
	VPANDD Z17, Z2, Z2
	VPANDD Z18, Z0, Z3
	VPCMPUD $6, Z19, Z3, K1 // |x| bits > Inf bits: NaN
	VPORD Z20, Z0, Z4
	VPANDD Z17, Z4, K1, Z2
	VMOVDQU32 Z2, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP rloop
rdone:
	VZEROUPPER
	RET

// func widenBF16AVX512(dst *float32, src *uint16, n int)
// dst[i] = FromBF16(src[i]) for n values (n a multiple of 16).
TEXT ·widenBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
wloop:
	CMPQ CX, $16
	JLT wdone
	VPMOVZXWD (SI), Z0
	VPSLLD $16, Z0, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP wloop
wdone:
	VZEROUPPER
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func pairBF16AVX512(dst, src *float32, n int)
// Rounds n floats (n a multiple of 16) to bf16 with roundBF16AVX512's
// integer steps and stores them as n/2 words of two bf16 values, the even
// index in the low half: dst[s] = pairWord(ToBF16(src[2s]), ToBF16(src[2s+1])).
TEXT ·pairBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VPBROADCASTD bf16c<>+0(SB), Z16
	VPBROADCASTD bf16c<>+4(SB), Z17
	VPBROADCASTD bf16c<>+8(SB), Z18
	VPBROADCASTD bf16c<>+12(SB), Z19
	VPBROADCASTD bf16c<>+16(SB), Z20
	VPBROADCASTD bf16c<>+20(SB), Z21
ploop:
	CMPQ CX, $16
	JLT pdone
	VMOVDQU32 (SI), Z0
	VPSRLD $16, Z0, Z1
	VPANDD Z21, Z1, Z1
	VPADDD Z16, Z1, Z1
	VPADDD Z1, Z0, Z2
	VPANDD Z17, Z2, Z2
	VPANDD Z18, Z0, Z3
	VPCMPUD $6, Z19, Z3, K1 // |x| bits > Inf bits: NaN
	VPORD Z20, Z0, Z4
	VPANDD Z17, Z4, K1, Z2
	VPSRLD $16, Z2, Z2
	VPMOVDW Z2, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JMP ploop
pdone:
	VZEROUPPER
	RET

// Word indices for interleaveRowsAVX512: the first output takes words
// 0..15 of lo and hi alternately, the second words 16..31.
DATA ilvw<>+0(SB)/4, $0x00200000
DATA ilvw<>+4(SB)/4, $0x00210001
DATA ilvw<>+8(SB)/4, $0x00220002
DATA ilvw<>+12(SB)/4, $0x00230003
DATA ilvw<>+16(SB)/4, $0x00240004
DATA ilvw<>+20(SB)/4, $0x00250005
DATA ilvw<>+24(SB)/4, $0x00260006
DATA ilvw<>+28(SB)/4, $0x00270007
DATA ilvw<>+32(SB)/4, $0x00280008
DATA ilvw<>+36(SB)/4, $0x00290009
DATA ilvw<>+40(SB)/4, $0x002a000a
DATA ilvw<>+44(SB)/4, $0x002b000b
DATA ilvw<>+48(SB)/4, $0x002c000c
DATA ilvw<>+52(SB)/4, $0x002d000d
DATA ilvw<>+56(SB)/4, $0x002e000e
DATA ilvw<>+60(SB)/4, $0x002f000f
DATA ilvw<>+64(SB)/4, $0x00300010
DATA ilvw<>+68(SB)/4, $0x00310011
DATA ilvw<>+72(SB)/4, $0x00320012
DATA ilvw<>+76(SB)/4, $0x00330013
DATA ilvw<>+80(SB)/4, $0x00340014
DATA ilvw<>+84(SB)/4, $0x00350015
DATA ilvw<>+88(SB)/4, $0x00360016
DATA ilvw<>+92(SB)/4, $0x00370017
DATA ilvw<>+96(SB)/4, $0x00380018
DATA ilvw<>+100(SB)/4, $0x00390019
DATA ilvw<>+104(SB)/4, $0x003a001a
DATA ilvw<>+108(SB)/4, $0x003b001b
DATA ilvw<>+112(SB)/4, $0x003c001c
DATA ilvw<>+116(SB)/4, $0x003d001d
DATA ilvw<>+120(SB)/4, $0x003e001e
DATA ilvw<>+124(SB)/4, $0x003f001f
GLOBL ilvw<>(SB), RODATA|NOPTR, $128

// func interleaveRowsAVX512(dst *float32, stride int, lo, hi *float32, groups int)
// For g < groups: the 16 words lo[16g…], hi[16g…] (each two bf16 values)
// become the 32 words at dst + g·stride bytes, word 2t+e pairing half e of
// lo[16g+t] (low 16 bits) with half e of hi[16g+t] (high 16 bits).
TEXT ·interleaveRowsAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ stride+8(FP), DX
	MOVQ lo+16(FP), SI
	MOVQ hi+24(FP), BX
	MOVQ groups+32(FP), CX
	VMOVDQU32 ilvw<>+0(SB), Z16
	VMOVDQU32 ilvw<>+64(SB), Z17
iloop:
	TESTQ CX, CX
	JZ idone
	VMOVDQU32 (SI), Z0
	VMOVDQU32 (BX), Z1
	VMOVDQA32 Z16, Z2
	VPERMI2W Z1, Z0, Z2 // Z2 = words of (lo, hi) at the indices in Z2
	VMOVDQA32 Z17, Z3
	VPERMI2W Z1, Z0, Z3
	VMOVDQU32 Z2, (DI)
	VMOVDQU32 Z3, 64(DI)
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ DX, DI
	DECQ CX
	JMP iloop
idone:
	VZEROUPPER
	RET
