package tokenizer

import (
	"slices"
	"testing"
)

// TestFastPathMatchesGeneral checks that the byte-level fast path gives
// the ids of the general pre-tokenizer and model path.
func TestFastPathMatchesGeneral(t *testing.T) {
	texts := append(slices.Clip(corpus), randomTexts(300, randomAlphabet)...)
	for _, rt := range []realTokenizer{realTokenizers[0], realTokenizers[2], realTokenizers[3]} {
		t.Run(rt.name, func(t *testing.T) {
			tok := loadReal(t, rt)
			if tok.fast == nil {
				t.Fatal("fast path not selected")
			}
			slow := *tok
			slow.fast = nil
			for _, text := range texts {
				if got, want := tok.Encode(text, true), slow.Encode(text, true); !slices.Equal(got, want) {
					t.Errorf("Encode(%q): fast %v, general %v", text, got, want)
				}
			}
		})
	}
	if tok := loadReal(t, realTokenizers[1]); tok.fast != nil {
		t.Error("fast path selected for a SentencePiece tokenizer")
	}
}
