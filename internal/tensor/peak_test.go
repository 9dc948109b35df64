package tensor

import (
	"testing"
	"time"
)

func TestMeasurePeakGFLOPS(t *testing.T) {
	for _, k := range AvailableKernels() {
		g := MeasurePeakGFLOPS(k, 1, 30*time.Millisecond)
		if k == KernelGeneric {
			if g != 0 {
				t.Errorf("generic: got %v, want 0 (no FMA loop)", g)
			}
			continue
		}
		// Any x86 core with FMA does well over 1 GFLOP/s; a zero or absurd
		// value means the loop or the arithmetic is broken.
		if g < 1 || g > 1e4 {
			t.Errorf("%v: peak %v GFLOP/s out of range", k, g)
		}
		t.Logf("%v: %.1f GFLOP/s on one thread", k, g)
	}
	if g := MeasurePeakGFLOPS(KernelAuto, 0, time.Millisecond); g != 0 {
		t.Errorf("threads=0: got %v, want 0", g)
	}
}
