package examples

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// TestNumberWordsDataset checks the embedded dataset against the rule:
// 300 distinct numbers, none held out, each completion spelled by
// NumberWordsCompletion.
func TestNumberWordsDataset(t *testing.T) {
	sc := bufio.NewScanner(bytes.NewReader(NumberWordsJSONL))
	seen := map[int]bool{}
	for line := 1; sc.Scan(); line++ {
		var ex struct{ Prompt, Completion string }
		if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		var n int
		if _, err := fmt.Sscanf(ex.Prompt, "Spell out %d:", &n); err != nil || NumberWordsPrompt(n) != ex.Prompt {
			t.Fatalf("line %d: prompt %q", line, ex.Prompt)
		}
		if want := NumberWordsCompletion(n); ex.Completion != want {
			t.Errorf("line %d: completion %q, want %q", line, ex.Completion, want)
		}
		if seen[n] || slices.Contains(NumberWordsHeldOut, n) {
			t.Errorf("line %d: %d is repeated or held out", line, n)
		}
		seen[n] = true
	}
	if len(seen) != 300 {
		t.Errorf("%d examples, want 300", len(seen))
	}
}

func TestSpellNumber(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "zero"}, {7, "seven"}, {13, "thirteen"}, {40, "forty"}, {42, "forty-two"}, {100, "one hundred"},
		{317, "three hundred seventeen"}, {560, "five hundred sixty"}, {999, "nine hundred ninety-nine"}, {1000, ""}, {-1, ""},
	} {
		if got := SpellNumber(c.n); got != c.want {
			t.Errorf("SpellNumber(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
