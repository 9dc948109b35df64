package tensor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Kernel names a family of micro-kernels: the instruction set the fast
// paths use. The zero value, KernelAuto, means the best one the CPU has.
type Kernel int

// The kernels, from the portable one up. A higher value is never slower
// on a CPU that has it.
const (
	KernelAuto    Kernel = iota // the best kernel available
	KernelGeneric               // portable Go, every architecture
	KernelAVX2                  // amd64 AVX2 + FMA3
	KernelAVX512                // amd64 AVX-512F (BF16 products also need AVX512_BF16)
)

// String returns the name GANTRY_KERNEL uses for k: auto, generic, avx2 or avx512.
func (k Kernel) String() string {
	switch k {
	case KernelAuto:
		return "auto"
	case KernelGeneric:
		return "generic"
	case KernelAVX2:
		return "avx2"
	case KernelAVX512:
		return "avx512"
	}
	return fmt.Sprintf("Kernel(%d)", int(k))
}

// ParseKernel parses a kernel name as String writes it; "" means auto.
func ParseKernel(s string) (Kernel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return KernelAuto, nil
	case "generic", "go", "purego":
		return KernelGeneric, nil
	case "avx2":
		return KernelAVX2, nil
	case "avx512":
		return KernelAVX512, nil
	}
	return 0, fmt.Errorf("unknown kernel %q (want auto, generic, avx2 or avx512): %w", s, ErrKernel)
}

// ErrKernel is returned (wrapped) for a kernel that is unknown or that this
// CPU cannot run.
var ErrKernel = errors.New("kernel unavailable")

// Available reports whether this CPU (and build) can run k. KernelAuto and
// KernelGeneric are always available.
func (k Kernel) Available() bool {
	switch k {
	case KernelAuto, KernelGeneric:
		return true
	}
	return k.impl() != nil
}

// AvailableKernels lists the concrete kernels this CPU can run, portable first.
func AvailableKernels() []Kernel {
	var ks []Kernel
	for _, k := range []Kernel{KernelGeneric, KernelAVX2, KernelAVX512} {
		if k.Available() {
			ks = append(ks, k)
		}
	}
	return ks
}

// Best returns the fastest kernel this CPU can run.
func Best() Kernel {
	ks := AvailableKernels()
	return ks[len(ks)-1]
}

// Config selects how the kernels run. The zero value is valid: the best
// kernel available, on runtime.GOMAXPROCS(0) threads. Results do not
// depend on Threads: work is split over rows and columns of the output,
// never over the summation, so every element of a product is summed in
// the same order whatever the thread count.
type Config struct {
	// Kernel is the instruction set to use. A kernel the CPU lacks is
	// replaced by the best one it has (Resolve says which).
	Kernel Kernel
	// Threads is the number of goroutines a product may use; 0 or less
	// means runtime.GOMAXPROCS(0).
	Threads int
}

// Resolve returns c with Kernel replaced by a concrete available kernel and
// Threads by a positive count.
func (c Config) Resolve() Config {
	if c.Kernel == KernelAuto || !c.Kernel.Available() {
		c.Kernel = Best()
	}
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	return c
}

// ConfigFromEnv builds a Config from GANTRY_KERNEL (auto, generic, avx2,
// avx512) and GANTRY_THREADS (a positive integer). It returns an error
// wrapping ErrKernel for a kernel name that is unknown or that this CPU
// cannot run, and an error for a malformed thread count.
func ConfigFromEnv() (Config, error) {
	var c Config
	k, err := ParseKernel(os.Getenv("GANTRY_KERNEL"))
	if err != nil {
		return Config{}, fmt.Errorf("GANTRY_KERNEL: %w", err)
	}
	if !k.Available() {
		return Config{}, fmt.Errorf("GANTRY_KERNEL=%s: this CPU lacks it (available: %v): %w", k, AvailableKernels(), ErrKernel)
	}
	c.Kernel = k
	if s := os.Getenv("GANTRY_THREADS"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return Config{}, fmt.Errorf("GANTRY_THREADS=%q: want a positive integer", s)
		}
		c.Threads = n
	}
	return c.Resolve(), nil
}

var defaultConfig = sync.OnceValue(func() Config {
	c, err := ConfigFromEnv()
	if err == nil {
		return c
	}
	// Keep whichever half of the environment is valid.
	c = Config{}
	if k, err := ParseKernel(os.Getenv("GANTRY_KERNEL")); err == nil && k.Available() {
		c.Kernel = k
	}
	if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv("GANTRY_THREADS"))); err == nil && n > 0 {
		c.Threads = n
	}
	c = c.Resolve()
	slog.Warn("tensor: ignoring invalid kernel environment", "err", err, "kernel", c.Kernel, "threads", c.Threads)
	return c
})

// Default returns the Config the package-level functions use, read once
// from the environment by ConfigFromEnv. Where the environment is invalid
// (an unknown kernel, one this CPU lacks, a malformed thread count),
// Default logs a warning with log/slog and falls back to the best kernel
// and GOMAXPROCS threads; callers that would rather fail call
// ConfigFromEnv themselves.
func Default() Config { return defaultConfig() }
