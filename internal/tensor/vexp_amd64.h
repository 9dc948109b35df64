// The AVX-512 exp and sigmoid of vmath.go (vmathConsts, step for step),
// shared by vmath_amd64.s, vfused_amd64.s and via3_amd64.s so that every
// kernel that exponentiates rounds exactly as vmathAVX512 does.

// EXPTABLE(sym) defines words 0–12 of the RODATA table sym<>: the clamp
// bounds, log2(e), −ln2 in two parts, the polynomial p0–p5, 1 and the
// sign bit. The including file adds its own words after them and the GLOBL.
#define EXPTABLE(sym) \
	DATA sym<>+0(SB)/4, $0x42b18000; \
	DATA sym<>+4(SB)/4, $0xc2d00000; \
	DATA sym<>+8(SB)/4, $0x3fb8aa3b; \
	DATA sym<>+12(SB)/4, $0xbf318000; \
	DATA sym<>+16(SB)/4, $0x395e8083; \
	DATA sym<>+20(SB)/4, $0x39506967; \
	DATA sym<>+24(SB)/4, $0x3ab743ce; \
	DATA sym<>+28(SB)/4, $0x3c088908; \
	DATA sym<>+32(SB)/4, $0x3d2aa9c1; \
	DATA sym<>+36(SB)/4, $0x3e2aaaaa; \
	DATA sym<>+40(SB)/4, $0x3f000000; \
	DATA sym<>+44(SB)/4, $0x3f800000; \
	DATA sym<>+48(SB)/4, $0x80000000

// Words of EXPTABLE: hi clamp 88.75, lo clamp −104, log2(e),
// −0.693359375 and +2.12194440e-4 (−ln2 high and low parts),
// p0 1.9875691500e-4, p1 1.3981999507e-3, p2 8.3334519073e-3,
// p3 4.1665795894e-2, p4 1.6666665459e-1, p5 5.0000001201e-1, 1, and
// 0x80000000 (the sign bit).

// EXPCONSTS(sym) loads words 0–11 of sym<> into Z16–Z27.
#define EXPCONSTS(sym) \
	VBROADCASTSS sym<>+0(SB), Z16; \
	VBROADCASTSS sym<>+4(SB), Z17; \
	VBROADCASTSS sym<>+8(SB), Z18; \
	VBROADCASTSS sym<>+12(SB), Z19; \
	VBROADCASTSS sym<>+16(SB), Z20; \
	VBROADCASTSS sym<>+20(SB), Z21; \
	VBROADCASTSS sym<>+24(SB), Z22; \
	VBROADCASTSS sym<>+28(SB), Z23; \
	VBROADCASTSS sym<>+32(SB), Z24; \
	VBROADCASTSS sym<>+36(SB), Z25; \
	VBROADCASTSS sym<>+40(SB), Z26; \
	VBROADCASTSS sym<>+44(SB), Z27

// EXP16 sets Z3 = e^Z1 with the constants in Z16–Z27 (Z1 clobbered; Z2,
// Z4 scratch): clamp t to [−104, 88.75] (VMINPS/VMAXPS return their
// second source, t, when either is NaN, so NaN passes through);
// n = round(t·log2 e); r = t − n·ln2 in two parts;
// e = 2^n · (1 + r + r²·p(r)).
#define EXP16 \
	VMINPS Z1, Z16, Z1; \
	VMAXPS Z1, Z17, Z1; \
	VMULPS Z18, Z1, Z2; \
	VRNDSCALEPS $0, Z2, Z2; \
	VFMADD231PS Z19, Z2, Z1; \
	VFMADD231PS Z20, Z2, Z1; \
	VMOVAPS Z21, Z3; \
	VFMADD213PS Z22, Z1, Z3; \
	VFMADD213PS Z23, Z1, Z3; \
	VFMADD213PS Z24, Z1, Z3; \
	VFMADD213PS Z25, Z1, Z3; \
	VFMADD213PS Z26, Z1, Z3; \
	VMULPS Z1, Z1, Z4; \
	VFMADD213PS Z1, Z4, Z3; \
	VADDPS Z27, Z3, Z3; \
	VSCALEFPS Z2, Z3, Z3

// SIG16 sets Z3 = σ(Z0) = (x < 0 ? e : 1) / (1 + e), e = exp(−|x|), as
// vmathAVX512's sigmoid does, with the EXPCONSTS in Z16–Z27, the sign bit
// in Z28 and zero in Z29 (Z1, Z2, Z4–Z6 scratch, K1).
#define SIG16 \
	VORPS Z28, Z0, Z1; \
	EXP16; \
	VADDPS Z27, Z3, Z5; \
	VCMPPS $1, Z29, Z0, K1; \
	VMOVAPS Z27, Z6; \
	VMOVAPS Z3, K1, Z6; \
	VDIVPS Z5, Z6, Z3
