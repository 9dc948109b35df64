package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// BenchmarkReadDataset measures reading and tokenizing prompt/completion
// lines with the built-in byte-level tokenizer (bytes/s of JSONL).
func BenchmarkReadDataset(b *testing.B) {
	tj, cj := tokenizer.ByteLevelFiles()
	tk, err := tokenizer.Parse(tj, cj)
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := range 2000 {
		line, _ := json.Marshal(map[string]string{
			"prompt":     fmt.Sprintf("Question %d: what is the sum of %d and %d? Explain the steps.", i, i*7, i*13),
			"completion": fmt.Sprintf(" The sum of %d and %d is %d, found by adding the ones, tens and hundreds.", i*7, i*13, i*20),
		})
		sb.Write(line)
		sb.WriteByte('\n')
	}
	data := sb.String()
	tok := FromTokenizer(tk)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ReadDataset(strings.NewReader(data), tok, ReadOptions{MaxSeqLen: 512}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFitTiny measures the whole loop (batching, LoRA step, AdamW,
// evaluation, metrics) on the tiny preset: one epoch per iteration.
func BenchmarkFitTiny(b *testing.B) {
	dir := tinyModelDir(b, 1)
	m, err := model.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tk, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(codeWordData(b, 200, 1))
	if err != nil {
		b.Fatal(err)
	}
	ds, err := ReadDataset(f, FromTokenizer(tk), ReadOptions{MaxSeqLen: 128})
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	tokens := 0
	for _, e := range ds.Examples[:160] {
		tokens += e.Len()
	}
	for b.Loop() {
		net, err := nn.New(&m.Config, &m.Weights, nn.Options{Method: nn.LoRA, LoRARank: 8, LoRAAlpha: 8, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		opt := LoopOptions{Epochs: 1, LearningRate: 1e-3, BatchSize: 8, MaxGradNorm: 1, LogInterval: 10, Shuffle: true}
		if _, err := Fit(context.Background(), net, nn.NewAdamW(net.Params()), ds.Examples[:160], ds.Examples[160:], opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "train_tokens/s")
}
