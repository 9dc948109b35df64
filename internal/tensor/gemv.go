package tensor

import (
	"fmt"
	"sync"
)

// minGemvPerThread is the number of multiply-adds (weights read) below
// which another goroutine costs more than it saves in Gemv.
const minGemvPerThread = 1 << 16

// Gemv computes y = W·x + beta·y for W [out, in] row-major, x [in] and
// y [out], with Default(); when beta is 0, y is not read. It is the
// product for one token at decode time, where W is read once from memory:
// rows are split over goroutines (in multiples of four), each row is one
// dot product summed in an order fixed by in and the kernel alone, so the
// result does not depend on the thread count. It panics, naming the
// argument, when a dimension is negative or a slice too short.
func Gemv(y, W, x []float32, out, in int, beta float32) { Default().Gemv(y, W, x, out, in, beta) }

// Gemv is the package-level Gemv run with configuration cfg.
func (cfg Config) Gemv(y, W, x []float32, out, in int, beta float32) {
	switch {
	case out < 0 || in < 0:
		panic(fmt.Sprintf("tensor.Gemv: negative dimension out=%d in=%d", out, in))
	case overflows(out, in):
		panic(fmt.Sprintf("tensor.Gemv: W of %d×%d overflows", out, in))
	case len(W) < out*in:
		panic(fmt.Sprintf("tensor.Gemv: len(W)=%d, want at least %d×%d", len(W), out, in))
	case len(x) < in:
		panic(fmt.Sprintf("tensor.Gemv: len(x)=%d, want at least %d", len(x), in))
	case len(y) < out:
		panic(fmt.Sprintf("tensor.Gemv: len(y)=%d, want at least %d", len(y), out))
	}
	if out == 0 {
		return
	}
	cfg = cfg.Resolve()
	threads := min(cfg.Threads, max(1, out*in/minGemvPerThread), (out+3)/4)
	if threads <= 1 {
		gemvRows(cfg.Kernel, y, W, x, in, 0, out, beta)
		return
	}
	groups := (out + 3) / 4
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		r0, r1 := t*groups/threads*4, min((t+1)*groups/threads*4, out)
		if t == threads-1 {
			gemvRows(cfg.Kernel, y, W, x, in, r0, r1, beta)
			continue
		}
		wg.Go(func() { gemvRows(cfg.Kernel, y, W, x, in, r0, r1, beta) })
	}
	wg.Wait()
}

// gemvRows computes rows r0 ≤ r < r1 of Gemv on one goroutine.
func gemvRows(k Kernel, y, W, x []float32, in, r0, r1 int, beta float32) {
	set := func(r int, d float32) {
		if beta == 0 {
			y[r] = d
		} else {
			y[r] = d + beta*y[r]
		}
	}
	if gemvRowsKernel(k, W, x, in, r0, r1, set) {
		return
	}
	x = x[:in]
	for r := r0; r < r1; r++ {
		set(r, Dot(W[r*in:r*in+in], x))
	}
}

// GemvBatch computes y_v = W·x_v + beta·y_v for nv vectors at once, with
// Default(): x [nv, in] and y [nv, out] row-major, W [out, in] row-major;
// when beta is 0, y is not read. It is the product for a few tokens at
// decode time (x·Wᵀ for a handful of rows): each row of W is read from
// memory once for every four vectors. Every element is summed in exactly
// the order Gemv sums it, so y_v is bit-identical to Gemv(y_v, W, x_v)
// whatever nv, the other vectors or the thread count. It panics, naming
// the argument, when a dimension is negative or a slice too short.
func GemvBatch(y, W, x []float32, nv, out, in int, beta float32) {
	Default().GemvBatch(y, W, x, nv, out, in, beta)
}

// GemvBatch is the package-level GemvBatch run with configuration cfg.
func (cfg Config) GemvBatch(y, W, x []float32, nv, out, in int, beta float32) {
	switch {
	case nv < 0 || out < 0 || in < 0:
		panic(fmt.Sprintf("tensor.GemvBatch: negative dimension nv=%d out=%d in=%d", nv, out, in))
	case overflows(out, in) || overflows(nv, in) || overflows(nv, out):
		panic(fmt.Sprintf("tensor.GemvBatch: sizes nv=%d out=%d in=%d overflow", nv, out, in))
	case len(W) < out*in:
		panic(fmt.Sprintf("tensor.GemvBatch: len(W)=%d, want at least %d×%d", len(W), out, in))
	case len(x) < nv*in:
		panic(fmt.Sprintf("tensor.GemvBatch: len(x)=%d, want at least %d×%d", len(x), nv, in))
	case len(y) < nv*out:
		panic(fmt.Sprintf("tensor.GemvBatch: len(y)=%d, want at least %d×%d", len(y), nv, out))
	}
	if nv == 0 || out == 0 {
		return
	}
	if nv == 1 {
		cfg.Gemv(y, W, x, out, in, beta)
		return
	}
	cfg = cfg.Resolve()
	threads := min(cfg.Threads, max(1, nv*out*in/minGemvPerThread), out)
	rows := func(r0, r1 int) {
		set := func(v, r int, d float32) {
			i := v*out + r
			if beta == 0 {
				y[i] = d
			} else {
				y[i] = d + beta*y[i]
			}
		}
		if gemvBatchKernel(cfg.Kernel, W, x, nv, in, r0, r1, set) {
			return
		}
		for v := 0; v < nv; v++ {
			xv := x[v*in : v*in+in]
			for r := r0; r < r1; r++ {
				set(v, r, Dot(W[r*in:r*in+in], xv))
			}
		}
	}
	if threads <= 1 {
		rows(0, out)
		return
	}
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		r0, r1 := t*out/threads, (t+1)*out/threads
		if t == threads-1 {
			rows(r0, r1)
			continue
		}
		wg.Go(func() { rows(r0, r1) })
	}
	wg.Wait()
}

// overflows reports whether a·b (a, b ≥ 0) exceeds 2⁶² (or 2³⁰ on
// 32-bit), far beyond any slice.
func overflows(a, b int) bool {
	const limit = int(^uint(0) >> 2) // 2^62−1 on 64-bit
	return b > 0 && a > limit/b
}
