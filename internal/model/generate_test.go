package model

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/safetensors"
)

// letters decodes id i as the letter 'a' + i%26.
type letters struct{}

func (letters) Decode(ids []int, _ bool) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteByte(byte('a' + id%26))
	}
	return b.String()
}

func TestGenerate(t *testing.T) {
	m, _ := newTestModel(t, "tiny", safetensors.F32, nil)
	ctx := context.Background()
	prompt := []int{5, 17, 42, 7}
	gen := func(opts GenerateOptions) []int {
		t.Helper()
		out, err := m.Generate(ctx, prompt, opts)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	noEOS := []int{}

	greedy := gen(GenerateOptions{MaxTokens: 12, EOS: noEOS})
	if len(greedy) != 12 {
		t.Fatalf("max tokens 12 gave %d tokens", len(greedy))
	}
	if again := gen(GenerateOptions{MaxTokens: 12, EOS: noEOS}); !slices.Equal(again, greedy) {
		t.Fatalf("greedy not deterministic: %v vs %v", greedy, again)
	}
	// Greedy must pick each step's argmax of a full forward.
	seq := append(slices.Clone(prompt), greedy...)
	logits, err := m.Forward(ctx, nil, seq, nil, 1, len(seq), false)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	for i, id := range greedy {
		row := logits[(len(prompt)-1+i)*V : (len(prompt)+i)*V]
		if best := argmax(row); best != id {
			t.Fatalf("greedy token %d is %d, argmax of full forward is %d", i, id, best)
		}
	}

	// Past the initial cache size (the cache grows on the way).
	if long := gen(GenerateOptions{MaxTokens: 300, EOS: noEOS}); len(long) != 300 || !slices.Equal(long[:12], greedy) {
		t.Fatalf("300-token greedy run: %d tokens, prefix %v", len(long), long[:min(12, len(long))])
	}

	sampled := GenerateOptions{MaxTokens: 16, Temperature: 1.5, TopK: 50, TopP: 0.95, Seed: 11, EOS: noEOS}
	a, b := gen(sampled), gen(sampled)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different tokens: %v vs %v", a, b)
	}
	sampled.Seed = 12
	if c := gen(sampled); slices.Equal(a, c) {
		t.Fatalf("seeds 11 and 12 gave the same 16 tokens %v", a)
	}
	topk1 := gen(GenerateOptions{MaxTokens: 12, Temperature: 2, TopK: 1, Seed: 3, EOS: noEOS})
	if !slices.Equal(topk1, greedy) {
		t.Fatalf("top_k 1 should equal greedy: %v vs %v", topk1, greedy)
	}

	// EOS: declaring the third greedy token an end token stops before it.
	if out := gen(GenerateOptions{MaxTokens: 12, EOS: []int{greedy[2]}}); len(out) >= 3 && slices.Index(out, greedy[2]) >= 0 {
		t.Fatalf("EOS %d not honoured: %v", greedy[2], out)
	}

	// Stop text: the letters of greedy tokens 3 and 4.
	stop := letters{}.Decode(greedy[3:5], true)
	out := gen(GenerateOptions{MaxTokens: 12, EOS: noEOS, Stop: []string{stop}, Decoder: letters{}})
	text := letters{}.Decode(out, true)
	if !strings.Contains(text, stop) || len(out) > 5 {
		t.Fatalf("stop %q: generated %q (%d tokens)", stop, text, len(out))
	}
	if trimmed, ok := TrimStop(text, []string{stop}); !ok || strings.Contains(trimmed, stop) {
		t.Fatalf("TrimStop(%q) = %q, %v", text, trimmed, ok)
	}

	// Streaming sees every token in order.
	var streamed []int
	gen(GenerateOptions{MaxTokens: 5, EOS: noEOS, OnToken: func(row, id int) error { streamed = append(streamed, id); return nil }})
	if !slices.Equal(streamed, greedy[:5]) {
		t.Fatalf("streamed %v, want %v", streamed, greedy[:5])
	}

	// A batch with a shorter (left-padded) prompt gives each row its solo output.
	short := []int{9, 3}
	soloShort, _ := m.Generate(ctx, short, GenerateOptions{MaxTokens: 8, EOS: noEOS})
	batch, err := m.GenerateBatch(ctx, [][]int{prompt, short}, GenerateOptions{MaxTokens: 8, EOS: noEOS})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(batch[0], greedy[:8]) || !slices.Equal(batch[1], soloShort) {
		t.Fatalf("batch %v, solo %v and %v", batch, greedy[:8], soloShort)
	}
}

func TestGenerateErrors(t *testing.T) {
	m, _ := newTestModel(t, "tiny", safetensors.F32, nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		prompt []int
		opts   GenerateOptions
	}{
		{"empty prompt", nil, GenerateOptions{}},
		{"negative temperature", []int{1}, GenerateOptions{Temperature: -1}},
		{"top_p above 1", []int{1}, GenerateOptions{TopP: 1.5}},
		{"stop without decoder", []int{1}, GenerateOptions{Stop: []string{"x"}}},
		{"prompt fills the context", make([]int, 1024), GenerateOptions{}},
		{"token outside vocabulary", []int{1 << 20}, GenerateOptions{MaxTokens: 1}},
	}
	for _, tc := range tests {
		if _, err := m.Generate(ctx, tc.prompt, tc.opts); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Generate(cctx, []int{1, 2}, GenerateOptions{MaxTokens: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
