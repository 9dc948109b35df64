package tensor

// AMX driver: the GotoBLAS loop nest of gemmSerial with 32×32 blocks of C
// computed by AMX tiles (amxTiles) instead of a register micro-kernel.

// amxAPanelLen is the length of one 32-row A panel of steps k pairs in the
// packAAMX layout: whole chunks of 16 pairs, 32 rows × 16 words each.
func amxAPanelLen(steps int) int { return (steps + 15) / 16 * 512 }

// packAAMX packs the mc×kc block of op(A) at (i0, p0) for amxTiles:
// ceil(mc/32) panels of amxAPanelLen(ceil(kc/2)) words; in panel q, chunk
// h holds rows q·32… as 32 rows of 16 bf16-pair words,
//
//	dst[q·len + h·512 + r·16 + t] = pair (k = p0+2s, p0+2s+1) of row i0+q·32+r, s = 16h+t,
//
// the even k in the low half, zero past kc, past the last chunk's pairs
// and past row mc. kc is at most amxKernel.kc.
func packAAMX(dst []float32, transA bool, a []float32, lda, i0, p0, mc, kc int) {
	var tmp [256]float32 // one row of pairs: amxKernel.kc/2
	steps := (kc + 1) / 2
	plen := amxAPanelLen(steps)
	row := tmp[:plen/32]
	for q := 0; q < mc; q += 32 {
		panel := dst[q/32*plen : (q/32+1)*plen]
		for r := 0; r < 32; r++ {
			i := q + r
			switch {
			case i >= mc:
				clear(row)
			case !transA:
				src := a[(i0+i)*lda+p0 : (i0+i)*lda+p0+kc]
				if !pairsFast(row, src) {
					for s := 0; s < steps; s++ {
						hi := uint16(0)
						if 2*s+1 < kc {
							hi = ToBF16(src[2*s+1])
						}
						row[s] = pairWord(ToBF16(src[2*s]), hi)
					}
				}
				clear(row[steps:])
			default: // op(A)[i][p] = a[p·lda+i]
				for s := 0; s < steps; s++ {
					hi := uint16(0)
					if 2*s+1 < kc {
						hi = ToBF16(a[(p0+2*s+1)*lda+i0+i])
					}
					row[s] = pairWord(ToBF16(a[(p0+2*s)*lda+i0+i]), hi)
				}
				clear(row[steps:])
			}
			for h := 0; h*16 < len(row); h++ {
				copy(panel[h*512+r*16:h*512+r*16+16], row[h*16:h*16+16])
			}
		}
	}
}

// gemmSerialAMX is gemmSerial for amxKernel: pl.packA packs with
// packAAMX, op(B) is in bf16 pair panels of 32 columns (packed by pl.packB
// or whole-k in pl.bPacked). Whole 32×32 blocks of C are written by the
// tiles directly when alpha is 1 and the block's beta 0 or 1; the others
// (edges, other alpha or beta) go through a scratch block.
func gemmSerialAMX(pl gemmPlan, m, n, k int, alpha, beta float32, c []float32, ldc int) {
	kern := pl.kern
	const mr, nr = 32, 32
	buf := getBuf(kern)
	defer gemmBufs.Put(buf)
	if want := kern.nc / nr * 512; len(buf.amxB) < want {
		buf.amxB = make([]float32, want)
	}
	tile := buf.tile[:mr*nr]
	for jc := 0; jc < n; jc += kern.nc {
		nc := min(kern.nc, n-jc)
		for pc := 0; pc < k; pc += kern.kc {
			kc := min(kern.kc, k-pc)
			steps := (kc + 1) / 2
			bp, bstride := buf.b, nr*steps
			if pl.bPacked != nil {
				bp, bstride = pl.bPacked[jc*pl.bSteps+pc/2*nr:], nr*pl.bSteps
			} else {
				pl.packB(buf.b, pc, jc, kc, nc)
			}
			betaBlock := beta
			if pc > 0 {
				betaBlock = 1
			}
			direct := alpha == 1 && (betaBlock == 0 || betaBlock == 1)
			plen := amxAPanelLen(steps)
			for ic := 0; ic < m; ic += kern.mc {
				mc := min(kern.mc, m-ic)
				pl.packA(buf.a, ic, pc, mc, kc)
				for ir := 0; ir < mc; ir += mr {
					mrr := min(mr, mc-ir)
					ap := buf.a[ir/mr*plen : (ir/mr+1)*plen]
					ci := (ic+ir)*ldc + jc
					full := 0 // column panels written directly
					if direct && mrr == mr {
						full = nc / nr
						if full > 0 {
							amxTiles(ap, steps, bp, bstride, full, c[ci:], ldc, betaBlock == 1, buf.amxB)
						}
					}
					for jr := full * nr; jr < nc; jr += nr {
						nrr := min(nr, nc-jr)
						amxTiles(ap, steps, bp[jr/nr*bstride:], bstride, 1, tile, nr, false, buf.amxB)
						storeTile(c[ci+jr:], ldc, tile, nr, mrr, nrr, alpha, betaBlock)
					}
				}
			}
		}
	}
}
