package tokenizer

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// miniJSON builds a small tokenizer.json around a vocabulary, for tests of
// single components.
func miniJSON(model, normalizer, pre, post, decoder, added string) []byte {
	or := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	if added == "" {
		added = "[]"
	}
	return []byte(`{"version":"1.0","added_tokens":` + added + `,"normalizer":` + or(normalizer) +
		`,"pre_tokenizer":` + or(pre) + `,"post_processor":` + or(post) + `,"decoder":` + or(decoder) +
		`,"model":` + model + `}`)
}

func TestConfig(t *testing.T) {
	tj, _ := ByteLevelFiles()
	tests := []struct {
		name     string
		config   string
		bos, eos int
		pad      int
		maxLen   int
		template string
	}{
		{"huge max length", `{"model_max_length": 1000000000000000019884624838656, "eos_token": "<|im_end|>"}`, 256, 258, -1, 0, ""},
		{"float max length", `{"model_max_length": 4096.0}`, 256, 256, -1, 4096, ""},
		{"object tokens", `{"bos_token": {"content": "<|im_start|>", "lstrip": false}, "eos_token": {"__type": "AddedToken", "content": "<|im_end|>"}, "pad_token": "<|endoftext|>"}`, 257, 258, 256, 0, ""},
		{"null bos", `{"bos_token": null}`, -1, 256, -1, 0, ""},
		{"template list", `{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}`, 256, 256, -1, 0, "D"},
		{"template string", `{"chat_template": "{{ 'x' }}"}`, 256, 256, -1, 0, "{{ 'x' }}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tj, []byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			check := func(name string, id int, ok bool, want int) {
				if want < 0 && ok || want >= 0 && (!ok || id != want) {
					t.Errorf("%s = %d, %v; want %d", name, id, ok, want)
				}
			}
			id, ok := tok.BOS()
			check("BOS", id, ok, tc.bos)
			id, ok = tok.EOS()
			check("EOS", id, ok, tc.eos)
			id, ok = tok.PAD()
			check("PAD", id, ok, tc.pad)
			if n, _ := tok.ModelMaxLength(); n != tc.maxLen {
				t.Errorf("ModelMaxLength = %d, want %d", n, tc.maxLen)
			}
			if got := tok.ChatTemplate(); got != tc.template {
				t.Errorf("ChatTemplate = %q, want %q", got, tc.template)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	vocab := `{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}`
	tests := []struct {
		name string
		json []byte
	}{
		{"not json", []byte("{")},
		{"no vocab", []byte(`{"model":{"type":"BPE"}}`)},
		{"unigram", miniJSON(`{"type":"Unigram","vocab":[["a",0.0]]}`, "", "", "", "", "")},
		{"negative id", miniJSON(`{"type":"BPE","vocab":{"a":-1},"merges":[]}`, "", "", "", "", "")},
		{"huge id", miniJSON(`{"type":"BPE","vocab":{"a":99999999999},"merges":[]}`, "", "", "", "", "")},
		{"merge out of vocab", miniJSON(`{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}`, "", "", "", "", "")},
		{"bad merge", miniJSON(`{"type":"BPE","vocab":{"a":0},"merges":["ab"]}`, "", "", "", "", "")},
		{"unknown normalizer", miniJSON(vocab, `{"type":"Precompiled"}`, "", "", "", "")},
		{"unknown regex", miniJSON(vocab, "", `{"type":"Split","pattern":{"Regex":"(?=a)b"},"behavior":"Isolated","invert":false}`, "", "", "")},
		{"unknown decoder", miniJSON(vocab, "", "", "", `{"type":"CTC"}`, "")},
		{"template id missing", miniJSON(vocab, "", "", `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}}],"special_tokens":{}}`, "", "")},
		{"added id huge", miniJSON(vocab, "", "", "", "", `[{"id":1e12,"content":"x"}]`)},
	}
	for _, tc := range tests {
		if _, err := Parse(tc.json, nil); err == nil {
			t.Errorf("%s: Parse succeeded, want an error", tc.name)
		}
	}
	_, err := Parse(miniJSON(vocab, `{"type":"Precompiled"}`, "", "", "", ""), nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("unsupported normalizer: err = %v, want ErrUnsupported", err)
	}
}

// TestComponents checks single components on a toy vocabulary.
func TestComponents(t *testing.T) {
	vocab := `{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"vocab":{"<unk>":0,"▁":1,"a":2,"b":3,"▁a":4,"ab":5,"▁ab":6,"1":7,"2":8,"<0x21>":9},"merges":["a b","▁ a","▁ ab"]}`
	tests := []struct {
		name                   string
		normalizer, pre, added string
		text                   string
		want                   []int
	}{
		{"metaspace", "", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, "", "ab ab", []int{6, 6}},
		{"metaspace never", "", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":true}`, "", "ab a", []int{5, 4}},
		{"fuse unk", "", "", "", "a€€b", []int{2, 0, 3}},
		{"byte fallback partial", "", "", "", "!", []int{9}},
		{"digits", "", `{"type":"Digits","individual_digits":true}`, "", "a12", []int{2, 7, 8}},
		{"replace+prepend", `{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`, "", "", "ab a", []int{6, 4}},
		{"lowercase", `{"type":"Lowercase"}`, "", "", "AB", []int{5}},
		{"split removed", "", `{"type":"Split","pattern":{"String":"b"},"behavior":"Removed","invert":false}`, "", "abab", []int{2, 2}},
		{"split merged next", "", `{"type":"Split","pattern":{"String":"b"},"behavior":"MergedWithNext","invert":false}`, "", "aba", []int{2, 3, 2}},
		{"added lstrip rstrip", "", "", `[{"id":10,"content":"<x>","lstrip":true,"rstrip":true,"special":true}]`, "a  <x>  b", []int{2, 10, 3}},
		{"added single word", "", "", `[{"id":10,"content":"ab","single_word":true,"special":false,"normalized":false}]`, "ab bab", []int{10, 0, 3, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := vocab
			if tc.name == "byte fallback partial" {
				m = strings.Replace(vocab, `"fuse_unk":true`, `"fuse_unk":true,"byte_fallback":true`, 1)
			}
			tok, err := Parse(miniJSON(m, tc.normalizer, tc.pre, "", "", tc.added), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Encode(tc.text, false); !slices.Equal(got, tc.want) {
				t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}

// TestRustRegexSemantics pins the places where this package follows the
// Rust library (Oniguruma, Unicode White_Space, Unicode case folding)
// rather than the JavaScript one.
func TestRustRegexSemantics(t *testing.T) {
	split := func(m matcher, s string) []string {
		var out []string
		for at := 0; at < len(s); {
			st, en := m.find(s, at)
			if st < 0 {
				break
			}
			out = append(out, s[st:en])
			at = en
		}
		return out
	}
	tests := []struct {
		m    matcher
		text string
		want []string
	}{
		{gpt2Matcher{}, "a\u0085\u0085b", []string{"a", "\u0085", "\u0085b"}[:0]},
		{llama3Matcher{3}, "it'ſ 12345", []string{"it", "'ſ", " ", "123", "45"}},
		{llama3Matcher{1}, "x  \n\n  y", []string{"x", "  \n\n", " ", " y"}},
		{llama3Matcher{3}, "\tfoo!!\n\nbar", []string{"\tfoo", "!!\n\n", "bar"}},
		{gpt2Matcher{}, "a   b", []string{"a", "  ", " b"}},
		{gpt2Matcher{}, "x\ufeffy", []string{"x", "\ufeff", "y"}},
	}
	// U+0085 is White_Space: "a" then one NEL (the run gives up its last
	// rune), then " b"-style: NEL is not a space, so it stands alone.
	tests[0].want = []string{"a", "\u0085", "\u0085", "b"}
	for _, tc := range tests {
		if got := split(tc.m, tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("%T split %q = %q, want %q", tc.m, tc.text, got, tc.want)
		}
	}
}

func TestApplyChatTemplate(t *testing.T) {
	tok := builtin(t)
	got, err := tok.ApplyChatTemplate([]Message{{"user", "Hi"}, {"assistant", "Yo"}}, true)
	want := "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>assistant\n"
	if err != nil || got != want {
		t.Errorf("ApplyChatTemplate = %q, %v; want %q", got, err, want)
	}
	tj, _ := ByteLevelFiles()
	plain, err := Parse(tj, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ApplyChatTemplate(nil, false); !errors.Is(err, ErrNoChatTemplate) {
		t.Errorf("no template: err = %v", err)
	}

	llama := loadReal(t, realTokenizers[3])
	got, err = llama.ApplyChatTemplate([]Message{{"system", "Be brief."}, {"user", "  Hi  "}}, true)
	want = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
	if err != nil || got != want {
		t.Errorf("Llama 3.1 ApplyChatTemplate = %q, %v\nwant %q", got, err, want)
	}
	qwen := loadReal(t, realTokenizers[2])
	got, err = qwen.ApplyChatTemplate([]Message{{"user", "Hi"}, {"assistant", "<think>\nr\n</think>\n\nA"}, {"user", "Q"}}, true)
	want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
	if err != nil || got != want {
		t.Errorf("Qwen3 ApplyChatTemplate = %q, %v\nwant %q", got, err, want)
	}
	got, err = qwen.RenderChat([]Message{{"user", "Hi"}}, ChatOptions{AddGenerationPrompt: true, Vars: map[string]any{"enable_thinking": false}})
	want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
	if err != nil || got != want {
		t.Errorf("Qwen3 RenderChat(enable_thinking=false) = %q, %v\nwant %q", got, err, want)
	}
	// The rendered text tokenizes with the template's special tokens intact.
	ids := qwen.Encode(got, false)
	start, _ := qwen.TokenID("<|im_start|>")
	if ids[0] != start || !qwen.IsSpecial(ids[0]) {
		t.Errorf("first id = %d, want <|im_start|> = %d", ids[0], start)
	}
}

func TestRealSpecialTokens(t *testing.T) {
	tests := []struct {
		rt              realTokenizer
		kind            string
		vocab, bos, eos int
		hasBOS          bool
	}{
		{realTokenizers[0], "byte-level BPE", 50257, 50256, 50256, true},
		{realTokenizers[1], "SentencePiece BPE (byte fallback)", 32000, 1, 2, true},
		{realTokenizers[2], "byte-level BPE", 151669, 0, 151645, false},
		{realTokenizers[3], "byte-level BPE", 128256, 128000, 128009, true},
	}
	for _, tc := range tests {
		t.Run(tc.rt.name, func(t *testing.T) {
			tok := loadReal(t, tc.rt)
			if tok.Kind() != tc.kind || tok.VocabSize() != tc.vocab {
				t.Errorf("Kind, VocabSize = %q, %d; want %q, %d", tok.Kind(), tok.VocabSize(), tc.kind, tc.vocab)
			}
			bos, ok := tok.BOS()
			if ok != tc.hasBOS || ok && bos != tc.bos {
				t.Errorf("BOS = %d, %v; want %d, %v", bos, ok, tc.bos, tc.hasBOS)
			}
			if eos, ok := tok.EOS(); !ok || eos != tc.eos {
				t.Errorf("EOS = %d, %v; want %d", eos, ok, tc.eos)
			}
		})
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range corpus {
		f.Add(s)
	}
	f.Add("\xff\xfe invalid \xc3")
	toks := []*Tokenizer{builtin(f)}
	for _, dir := range []string{"testdata/gpt2", "testdata/mistral"} {
		tok, err := Load(dir)
		if err != nil {
			f.Fatal(err)
		}
		toks = append(toks, tok)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for i, tok := range toks {
			ids := tok.Encode(text, true)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range", id)
				}
			}
			got := tok.Decode(tok.Encode(text, false), false)
			if i < 2 && utf8.ValidString(text) && got != text {
				// Byte-level tokenizers round-trip every valid text.
				t.Fatalf("tokenizer %d: Decode(Encode(%q)) = %q", i, text, got)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 1, 2, 255})
	tok, err := Load("testdata/mistral")
	if err != nil {
		f.Fatal(err)
	}
	gpt := builtin(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ids := make([]int, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			ids = append(ids, int(b[i])<<8|int(b[i+1])-100)
		}
		_ = tok.Decode(ids, false)
		_ = tok.Decode(ids, true)
		_ = gpt.Decode(ids, false)
	})
}

func FuzzParse(f *testing.F) {
	tj, cj := ByteLevelFiles()
	f.Add(tj, cj)
	f.Add(miniJSON(`{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}`, `{"type":"NFC"}`,
		`{"type":"Metaspace"}`, `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"a","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"a":{"id":"a","ids":[0],"tokens":["a"]}}}`,
		`{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Fuse"}]}`, `[{"id":3,"content":"<s>","special":true}]`), []byte(`{"bos_token":"<s>"}`))
	f.Fuzz(func(t *testing.T, tj, cj []byte) {
		tok, err := Parse(tj, cj)
		if err != nil {
			return
		}
		ids := tok.Encode("Hello <s> wörld 123 🙂", true)
		_ = tok.Decode(ids, false)
	})
}

// TestAddBOSEOS checks that add_bos_token and add_eos_token rebuild the
// post-processor of Llama-class tokenizers, as transformers does.
func TestAddBOSEOS(t *testing.T) {
	tj, err := os.ReadFile("testdata/mistral/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		config string
		want   []int
	}{
		{`{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "add_eos_token": true}`, []int{1, 22557, 2}},
		{`{"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false}`, []int{22557}},
		{`{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "add_eos_token": true}`, []int{1, 22557}},
		{`{"bos_token": "<s>"}`, []int{1, 22557}},
	}
	for _, tc := range tests {
		tok, err := Parse(tj, []byte(tc.config))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("Hello", true); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Encode = %v, want %v", tc.config, got, tc.want)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok, err := Load("testdata/gpt2")
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]int, len(corpus))
	for i, s := range corpus {
		want[i] = tok.Encode(s, true)
	}
	tok.model.cache.reset()
	tok.model.rawCache.reset()
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := range corpus {
				k := (i + g*7) % len(corpus)
				if got := tok.Encode(corpus[k], true); !slices.Equal(got, want[k]) {
					done <- fmt.Errorf("Encode(%q) = %v, want %v", corpus[k], got, want[k])
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestRegexFallback checks Split patterns outside the hand-written ones,
// which run on Go's regexp after \s and \d are made Unicode-aware.
func TestRegexFallback(t *testing.T) {
	vocab := `{"type":"BPE","vocab":{"a":0,"1":1," ":2,"\u3000":3,"٣":4},"merges":[]}`
	pre := `{"type":"Split","pattern":{"Regex":"\\d+|[^\\s\\d]+|\\s+"},"behavior":"Isolated","invert":false}`
	tok, err := Parse(miniJSON(vocab, "", pre, "", "", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("a1\u3000٣ a", false); !slices.Equal(got, []int{0, 1, 3, 4, 2, 0}) {
		t.Errorf("Encode = %v", got)
	}
	m, err := compileRegex(`\d+|[^\s\d]+|\s+`)
	if err != nil {
		t.Fatal(err)
	}
	var pieces []string
	for at := 0; ; {
		st, en := m.find("ab12\u3000\u3000٣x", at)
		if st < 0 {
			break
		}
		pieces = append(pieces, "ab12\u3000\u3000٣x"[st:en])
		at = en
	}
	if want := []string{"ab", "12", "\u3000\u3000", "٣", "x"}; !slices.Equal(pieces, want) {
		t.Errorf("pieces = %q, want %q", pieces, want)
	}
}
