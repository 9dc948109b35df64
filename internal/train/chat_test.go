package train

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/tokenizer"
)

// trainedText decodes each maximal run of loss-bearing tokens of ex.
func trainedText(tk *tokenizer.Tokenizer, ex Example) []string {
	var runs []string
	var cur []int
	for i, id := range ex.Tokens {
		if ex.Trained[i] {
			cur = append(cur, int(id))
			continue
		}
		if len(cur) > 0 {
			runs = append(runs, tk.Decode(cur, false))
			cur = nil
		}
	}
	if len(cur) > 0 {
		runs = append(runs, tk.Decode(cur, false))
	}
	return runs
}

func chatLines(n int) string {
	var b strings.Builder
	for range n {
		line, _ := json.Marshal(map[string]any{"messages": []map[string]string{
			{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello"},
			{"role": "user", "content": "and now?"}, {"role": "assistant", "content": "bye now"},
		}})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestChatRealTemplates reads chat examples through real tokenizers and
// chat templates and checks that exactly the assistant replies (with the
// template's end-of-turn marker) carry loss.
func TestChatRealTemplates(t *testing.T) {
	tj, cj := tokenizer.ByteLevelFiles()
	chatml, err := tokenizer.Parse(tj, cj)
	if err != nil {
		t.Fatal(err)
	}
	// Mistral's SentencePiece tokenizer with its published template.
	mtj, err := os.ReadFile("../tokenizer/testdata/mistral/tokenizer.json")
	if err != nil {
		t.Skipf("mistral tokenizer test file: %v", err)
	}
	mtpl, err := os.ReadFile("../chattemplate/testdata/templates/mistral.jinja")
	if err != nil {
		t.Skipf("mistral template test file: %v", err)
	}
	mcj, _ := json.Marshal(map[string]any{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "chat_template": strings.TrimSpace(string(mtpl))})
	mistral, err := tokenizer.Parse(mtj, mcj)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tk   *tokenizer.Tokenizer
		want []string
	}{
		{"chatml", chatml, []string{"hello<|im_end|>\n", "bye now<|im_end|>\n"}},
		{"mistral", mistral, []string{"hello</s>", "bye now</s>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := ReadDataset(strings.NewReader(chatLines(10)), FromTokenizer(c.tk), ReadOptions{MaxSeqLen: 512})
			if err != nil {
				t.Fatal(err)
			}
			ex := ds.Examples[0]
			got := trainedText(c.tk, ex)
			if len(got) != len(c.want) {
				t.Fatalf("trained spans %q, want %q", got, c.want)
			}
			for i := range got {
				if strings.TrimLeft(got[i], " ") != c.want[i] {
					t.Errorf("span %d = %q, want %q", i, got[i], c.want[i])
				}
			}
			// The whole example is the template's rendering.
			full, _ := c.tk.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: "hi there"}, {Role: "assistant", Content: "hello"}, {Role: "user", Content: "and now?"}, {Role: "assistant", Content: "bye now"}}, false)
			ids := make([]int, len(ex.Tokens))
			for i, id := range ex.Tokens {
				ids[i] = int(id)
			}
			if dec := c.tk.Decode(ids, false); strings.ReplaceAll(dec, " ", "") != strings.ReplaceAll(full, " ", "") {
				t.Errorf("example decodes to %q, template renders %q", dec, full)
			}
		})
	}
}

// TestPromptCompletionSentencePiece checks that a completion gets the
// tokens it has in running text under a SentencePiece tokenizer (one
// word-start marker, not two).
func TestPromptCompletionSentencePiece(t *testing.T) {
	mtj, err := os.ReadFile("../tokenizer/testdata/mistral/tokenizer.json")
	if err != nil {
		t.Skipf("mistral tokenizer test file: %v", err)
	}
	mcj, err := os.ReadFile("../tokenizer/testdata/mistral/tokenizer_config.json")
	if err != nil {
		t.Skipf("mistral tokenizer test file: %v", err)
	}
	tk, err := tokenizer.Parse(mtj, mcj)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for range 10 {
		b.WriteString(`{"prompt": "The capital of France is", "completion": " Paris, of course."}` + "\n")
	}
	ds, err := ReadDataset(strings.NewReader(b.String()), FromTokenizer(tk), ReadOptions{MaxSeqLen: 64})
	if err != nil {
		t.Fatal(err)
	}
	ex := ds.Examples[0]
	want := tk.Encode("The capital of France is Paris, of course.", true)
	eos, _ := tk.EOS()
	want = append(want, eos)
	got := make([]int, len(ex.Tokens))
	for i, id := range ex.Tokens {
		got[i] = int(id)
	}
	if !slicesEqualInt(got, want) {
		t.Errorf("tokens %v, want %v", got, want)
	}
	if spans := trainedText(tk, ex); len(spans) != 1 || !strings.HasPrefix(spans[0], "Paris, of course.") && !strings.HasPrefix(spans[0], " Paris, of course.") {
		t.Errorf("trained text %q", spans)
	}
	if strings.Contains(tk.Decode(got, true), "  Paris") {
		t.Errorf("completion got a second word-start marker: %q", tk.Decode(got, true))
	}
}

func slicesEqualInt(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
