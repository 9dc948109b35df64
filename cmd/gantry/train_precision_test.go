package main

import (
	"context"
	"strings"
	"testing"
)

// TestTrainPrecisionFlag checks that gantry train and gantry bench train
// reject an unknown --precision before doing any work.
func TestTrainPrecisionFlag(t *testing.T) {
	ctx := context.Background()
	err := runTrain(ctx, []string{"--model", t.TempDir(), "--data", "x.jsonl", "--out", t.TempDir(), "--precision", "fp8"})
	if err == nil || !strings.Contains(err.Error(), "precision") {
		t.Errorf("gantry train --precision fp8: error %v, want one naming the precision", err)
	}
	err = runBenchTrain(ctx, []string{"--preset", "tiny", "--precision", "fp8"})
	if err == nil || !strings.Contains(err.Error(), "precision") {
		t.Errorf("gantry bench train --precision fp8: error %v, want one naming the precision", err)
	}
}
