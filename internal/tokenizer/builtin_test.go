package tokenizer

import (
	"slices"
	"testing"
)

func builtin(t testing.TB) *Tokenizer {
	t.Helper()
	tj, cj := ByteLevelFiles()
	tok, err := Parse(tj, cj)
	if err != nil {
		t.Fatalf("Parse(ByteLevelFiles()): %v", err)
	}
	return tok
}

func TestByteLevelFiles(t *testing.T) {
	tok := builtin(t)
	if got := tok.VocabSize(); got != 259 {
		t.Errorf("VocabSize = %d, want 259", got)
	}
	if got := tok.Kind(); got != "byte-level BPE" {
		t.Errorf("Kind = %q", got)
	}
	for _, c := range []struct {
		name string
		f    func() (int, bool)
		want int
	}{{"BOS", tok.BOS, 256}, {"EOS", tok.EOS, 256}, {"PAD", tok.PAD, 256}} {
		if id, ok := c.f(); !ok || id != c.want {
			t.Errorf("%s = %d, %v; want %d", c.name, id, ok, c.want)
		}
	}
	if id, ok := tok.TokenID("<|im_end|>"); !ok || id != 258 || !tok.IsSpecial(258) {
		t.Errorf("TokenID(<|im_end|>) = %d, %v; special %v", id, ok, tok.IsSpecial(258))
	}
	if tok.IsSpecial('a') {
		t.Error("IsSpecial('a') = true")
	}
	tests := []struct {
		text string
		want []int
	}{
		{"", []int{}},
		{"hi", []int{'h', 'i'}},
		{"a b\n", []int{'a', ' ', 'b', '\n'}},
		{"é", []int{0xC3, 0xA9}},
		{"<|im_start|>user\nhi<|im_end|>", []int{257, 'u', 's', 'e', 'r', '\n', 'h', 'i', 258}},
		{"x<|endoftext|>", []int{'x', 256}},
	}
	for _, tc := range tests {
		for _, add := range []bool{false, true} {
			got := tok.Encode(tc.text, add)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Encode(%q, %v) = %v, want %v", tc.text, add, got, tc.want)
			}
		}
		if got := tok.Decode(tc.want, false); got != tc.text {
			t.Errorf("Decode(%v) = %q, want %q", tc.want, got, tc.text)
		}
	}
	if got := tok.Decode([]int{257, 'h', 'i', 258, 256}, true); got != "hi" {
		t.Errorf("Decode(skipSpecial) = %q, want %q", got, "hi")
	}
	if got := tok.Decode([]int{-1, 9999, 'o', 'k'}, false); got != "ok" {
		t.Errorf("Decode with bad ids = %q, want %q", got, "ok")
	}
	if got := tok.Decode([]int{0xE2, 0x82}, false); got != "\uFFFD" {
		t.Errorf("Decode(truncated UTF-8) = %q, want one U+FFFD", got)
	}
}
