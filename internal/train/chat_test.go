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
