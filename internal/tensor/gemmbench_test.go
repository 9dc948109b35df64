package tensor

import (
	"context"
	"testing"
)

func TestRunGemmBench(t *testing.T) {
	res, err := RunGemmBench(context.Background(), GemmBench{M: 70, N: 40, K: 33, TransB: true, Iters: 2, Config: Config{Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.M != 70 || res.N != 40 || res.K != 33 || !res.TransB || res.Threads != 1 || res.Iters != 2 {
		t.Errorf("result does not echo the request: %+v", res)
	}
	if res.GFLOPS <= 0 || res.Seconds <= 0 || res.Kernel == "" || res.Kernel == "auto" {
		t.Errorf("implausible result %+v", res)
	}
	for _, g := range []GemmBench{{M: 0, N: 1, K: 1}, {M: 1 << 20, N: 1 << 20, K: 1}} {
		if _, err := RunGemmBench(context.Background(), g); err == nil {
			t.Errorf("%+v: no error", g)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunGemmBench(ctx, GemmBench{M: 8, N: 8, K: 8}); err == nil {
		t.Error("cancelled context: no error")
	}
}
