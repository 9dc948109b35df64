package demo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gantryml/gantry/examples"
)

// TestDemo runs the whole demo with a reduced budget (one epoch, two
// prompts): the model must end ACTIVE with metrics, and the report must
// hold the side-by-side rows with the expected answers.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	dir := t.TempDir()
	res, err := Run(ctx, Options{DataDir: dir, Epochs: 1, Prompts: []int{42, 317}, MaxTokens: 16, Threads: 2, Out: &out, PollInterval: 100 * time.Millisecond})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.LifecycleState != "ACTIVE" || res.ModelID == "" {
		t.Errorf("model %s ended %s", res.ModelID, res.LifecycleState)
	}
	if !(res.FinalLoss > 0) || res.FinalAccuracy < 0 || res.FinalAccuracy > 1 || res.Steps < 1 {
		t.Errorf("metrics: accuracy %v, loss %v, last step %d", res.FinalAccuracy, res.FinalLoss, res.Steps)
	}
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows, want 2", len(res.Rows))
	}
	for i, n := range []int{42, 317} {
		r := res.Rows[i]
		if r.Prompt != examples.NumberWordsPrompt(n) || r.Expected != examples.NumberWordsCompletion(n) {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	report := out.String()
	for _, want := range []string{"uploaded dataset", "cluster ACTIVE", "model ACTIVE", "final accuracy", "prompt", "expected",
		"base model", "fine-tuned", "Spell out 42:", "forty-two.", "Spell out 317:", "three hundred seventeen.", "exact answers:"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !strings.Contains(report, "epoch  1/1  step") {
		t.Errorf("report shows no progress line")
	}
	// A kept data directory holds the downloaded adapter.
	if _, err := os.Stat(dir + "/demo-adapter/adapter_config.json"); err != nil {
		t.Errorf("adapter not downloaded: %v", err)
	}
}
