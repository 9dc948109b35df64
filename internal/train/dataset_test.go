package train

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// byteTok is a fake tokenizer: one id per byte, BOS 256 (added when
// addSpecial), EOS 257, and a ChatML template whose special markers are
// ids 258 (<|im_start|>) and 259 (<|im_end|>).
type byteTok struct{ noBOS bool }

func (t byteTok) Encode(s string, addSpecial bool) []int {
	var ids []int
	if addSpecial && !t.noBOS {
		ids = append(ids, 256)
	}
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "<|im_start|>"):
			ids = append(ids, 258)
			s = s[len("<|im_start|>"):]
		case strings.HasPrefix(s, "<|im_end|>"):
			ids = append(ids, 259)
			s = s[len("<|im_end|>"):]
		default:
			ids = append(ids, int(s[0]))
			s = s[1:]
		}
	}
	return ids
}
func (t byteTok) BOS() (int, bool) { return 256, true }
func (t byteTok) EOS() (int, bool) { return 257, true }
func (t byteTok) RenderChat(msgs []Message, gen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

// plainTok has no chat template.
type plainTok struct{ byteTok }

func (plainTok) RenderChat() {}

func goodLines(n int) []string {
	var l []string
	for i := range n {
		l = append(l, fmt.Sprintf(`{"prompt": "p%d", "completion": "c%d"}`, i, i))
	}
	return l
}

func TestReadDatasetBadLines(t *testing.T) {
	cases := []struct {
		name, line, reason string
	}{
		{"not json", `{"prompt": "a", `, "not valid JSON"},
		{"array", `["a"]`, "not a JSON object"},
		{"number", `42`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"missing prompt", `{"completion": "x"}`, `missing "prompt"`},
		{"missing completion", `{"prompt": "x"}`, `missing "completion"`},
		{"prompt number", `{"prompt": 1, "completion": "x"}`, `"prompt" is not a string`},
		{"completion null", `{"prompt": "a", "completion": null}`, `"completion" is not a string`},
		{"empty completion", `{"prompt": "a", "completion": "  "}`, `"completion" is empty`},
		{"invalid utf8", "{\"prompt\": \"\xff\", \"completion\": \"x\"}", "invalid UTF-8"},
		{"unknown role", `{"messages": [{"role": "robot", "content": "x"}]}`, `unknown role "robot"`},
		{"role missing", `{"messages": [{"content": "x"}]}`, `message 1: missing "role"`},
		{"content not string", `{"messages": [{"role": "user", "content": ["x"]}]}`, `message 1: "content" is not a string`},
		{"no assistant", `{"messages": [{"role": "user", "content": "x"}]}`, "no assistant message"},
		{"empty messages", `{"messages": []}`, `"messages" is empty`},
		{"messages not list", `{"messages": "hi"}`, `"messages" is not a list`},
		{"both", `{"messages": [], "prompt": "x"}`, `both "messages" and "prompt"`},
		{"empty assistant", `{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]}`, "assistant content is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := goodLines(12)
			lines = append(lines[:3], append([]string{c.line}, lines[3:]...)...)
			_, err := ReadDataset(strings.NewReader(strings.Join(lines, "\n")), byteTok{}, ReadOptions{MaxSeqLen: 64})
			var de *DatasetError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DatasetError", err)
			}
			if de.Count != 1 || len(de.Lines) != 1 || de.Lines[0].Line != 4 {
				t.Fatalf("bad lines = %+v (count %d), want one at line 4", de.Lines, de.Count)
			}
			if !strings.Contains(de.Lines[0].Reason, c.reason) {
				t.Errorf("reason %q does not contain %q", de.Lines[0].Reason, c.reason)
			}
			if !strings.Contains(err.Error(), "line 4: ") {
				t.Errorf("message %q does not name line 4", err)
			}
		})
	}
}

func TestReadDatasetCollectsAllBadLines(t *testing.T) {
	lines := goodLines(12)
	lines[1] = "oops"
	lines[5] = `{"prompt": "x"}`
	lines[11] = `{"prompt": "x", "completion": 3}`
	_, err := ReadDataset(strings.NewReader(strings.Join(lines, "\n")), byteTok{}, ReadOptions{MaxSeqLen: 64})
	var de *DatasetError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	var got []int
	for _, l := range de.Lines {
		got = append(got, l.Line)
	}
	if !reflect.DeepEqual(got, []int{2, 6, 12}) {
		t.Errorf("bad lines %v, want [2 6 12]", got)
	}
	if !errors.Is(err, ErrTooFewExamples) {
		t.Errorf("9 valid examples should also be too few: %v", err)
	}
}

func TestReadDatasetChatWithoutTemplate(t *testing.T) {
	lines := goodLines(10)
	lines = append(lines, `{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}`)
	_, err := ReadDataset(strings.NewReader(strings.Join(lines, "\n")), plainTok{}, ReadOptions{MaxSeqLen: 64})
	var de *DatasetError
	if !errors.As(err, &de) || de.Lines[0].Line != 11 || !strings.Contains(de.Lines[0].Reason, "no chat template") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDatasetBlankLinesAndTooFew(t *testing.T) {
	lines := goodLines(10)
	bom := strings.Join(lines, "\n")
	if _, err := ReadDataset(strings.NewReader("\ufeff"+bom), byteTok{}, ReadOptions{MaxSeqLen: 64}); err != nil {
		t.Errorf("leading byte order mark: %v", err)
	}
	text := "\n" + strings.Join(lines[:5], "\n") + "\n\n   \r\n" + strings.Join(lines[5:], "\r\n") + "\n\n"
	ds, err := ReadDataset(strings.NewReader(text), byteTok{}, ReadOptions{MaxSeqLen: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != 10 {
		t.Fatalf("%d examples, want 10", len(ds.Examples))
	}
	if ds.Examples[0].Line != 2 || ds.Examples[5].Line != 9 {
		t.Errorf("line numbers %d, %d; want 2, 9", ds.Examples[0].Line, ds.Examples[5].Line)
	}
	_, err = ReadDataset(strings.NewReader(strings.Join(lines[:9], "\n")), byteTok{}, ReadOptions{MaxSeqLen: 64})
	if !errors.Is(err, ErrTooFewExamples) {
		t.Fatalf("9 examples: err = %v, want ErrTooFewExamples", err)
	}
}

func TestReadDatasetLongLine(t *testing.T) {
	lines := goodLines(11)
	lines[2] = `{"prompt": "` + strings.Repeat("a", MaxLineBytes) + `", "completion": "x"}`
	_, err := ReadDataset(strings.NewReader(strings.Join(lines, "\n")), byteTok{}, ReadOptions{MaxSeqLen: 64})
	var de *DatasetError
	if !errors.As(err, &de) || de.Count != 1 || de.Lines[0].Line != 3 || !strings.Contains(de.Lines[0].Reason, "longer than") {
		t.Fatalf("err = %v", err)
	}
}

// one reads a single example from line (padded with good lines).
func one(t *testing.T, tok Tokenizer, line string, maxLen int) (Example, int) {
	t.Helper()
	lines := []string{line}
	for range 10 {
		lines = append(lines, `{"prompt": "", "completion": "c"}`)
	}
	ds, err := ReadDataset(strings.NewReader(strings.Join(lines, "\n")), tok, ReadOptions{MaxSeqLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	tr := ds.Truncated
	return ds.Examples[0], tr
}

// show renders an example as text with trained bytes in upper case and
// specials as B, E, S, X.
func show(ex Example) string {
	var b strings.Builder
	for i, id := range ex.Tokens {
		var s string
		switch id {
		case 256:
			s = "B"
		case 257:
			s = "E"
		case 258:
			s = "S"
		case 259:
			s = "X"
		default:
			s = string(rune(id))
		}
		if ex.Trained[i] {
			s = "[" + s + "]"
		}
		b.WriteString(s)
	}
	return b.String()
}

func TestPromptCompletionTruncation(t *testing.T) {
	cases := []struct {
		name   string
		tok    Tokenizer
		p, c   string
		max    int
		want   string
		trunc  int
		tokens int
	}{
		{"fits", byteTok{}, "ab", "cd", 6, "Bab[c][d][E]", 0, 3},
		{"no bos", byteTok{noBOS: true}, "ab", "cd", 6, "ab[c][d][E]", 0, 3},
		{"cut prompt start", byteTok{}, "abcd", "xy", 6, "Bcd[x][y][E]", 1, 3},
		{"prompt gone", byteTok{}, "abcd", "xyz", 5, "B[x][y][z][E]", 1, 4},
		{"cut completion end", byteTok{}, "abcd", "uvwxyz", 4, "B[u][v][w]", 1, 3},
		{"empty prompt", byteTok{}, "", "x", 6, "B[x][E]", 0, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, tr := one(t, c.tok, fmt.Sprintf(`{"prompt": %q, "completion": %q}`, c.p, c.c), c.max)
			if got := show(ex); got != c.want {
				t.Errorf("example %s, want %s", got, c.want)
			}
			if tr != c.trunc {
				t.Errorf("truncated %d, want %d", tr, c.trunc)
			}
			if ex.LossTokens() != c.tokens {
				t.Errorf("loss tokens %d, want %d", ex.LossTokens(), c.tokens)
			}
			if len(ex.Tokens) > c.max {
				t.Errorf("length %d over max %d", len(ex.Tokens), c.max)
			}
		})
	}
}

func TestChatMasksAssistantTurns(t *testing.T) {
	line := `{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]}`
	ex, tr := one(t, byteTok{}, line, 200)
	want := "Ssystem\nsX\nSuser\nu1X\nSassistant\n[a][1][X][\n]Suser\nu2X\nSassistant\n[a][2][X][\n]"
	if got := show(ex); got != want || tr != 0 {
		t.Errorf("chat example\n%q (truncated %d), want\n%q", got, tr, want)
	}
	// A trailing user turn carries no loss and is dropped.
	line2 := `{"messages": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]}`
	ex, _ = one(t, byteTok{}, line2, 200)
	if got, want := show(ex), "Suser\nu1X\nSassistant\n[a][1][X][\n]"; got != want {
		t.Errorf("trailing user: %q, want %q", got, want)
	}
	// A long trailing user turn is dropped without counting as truncation.
	long := `{"messages": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "` + strings.Repeat("x", 100) + `"}]}`
	ex, tr = one(t, byteTok{}, long, 40)
	if got, want := show(ex), "Suser\nu1X\nSassistant\n[a][1][X][\n]"; got != want || tr != 0 {
		t.Errorf("long trailing user: %q (truncated %d), want %q (0)", got, tr, want)
	}
	// Too long: the window ending at the last assistant token is kept.
	ex, tr = one(t, byteTok{}, line, 12)
	if got, want := show(ex), "sistant\n[a][2][X][\n]"; got != want || tr != 1 {
		t.Errorf("truncated chat: %q (truncated %d), want %q", got, tr, want)
	}
	// The last assistant span alone too long: its start is kept.
	ex, _ = one(t, byteTok{}, `{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "abcdefgh"}]}`, 4)
	if got, want := show(ex), "a[b][c][d]"; got != want {
		t.Errorf("long reply: %q, want %q", got, want)
	}
}

func TestSplit(t *testing.T) {
	for _, n := range []int{10, 11, 19, 100, 1001} {
		tr, va := Split(n, 7, true)
		if len(tr) != n*8/10 || len(tr)+len(va) != n {
			t.Errorf("n=%d: split %d/%d", n, len(tr), len(va))
		}
		seen := make(map[int]bool)
		for _, i := range append(append([]int{}, tr...), va...) {
			seen[i] = true
		}
		if len(seen) != n {
			t.Errorf("n=%d: split is not a partition", n)
		}
		tr2, va2 := Split(n, 7, true)
		if !reflect.DeepEqual(tr, tr2) || !reflect.DeepEqual(va, va2) {
			t.Errorf("n=%d: split not deterministic", n)
		}
	}
	a, _ := Split(100, 1, true)
	b, _ := Split(100, 2, true)
	if reflect.DeepEqual(a, b) {
		t.Error("seeds 1 and 2 give the same split")
	}
	tr, va := Split(10, 1, false)
	if !reflect.DeepEqual(tr, []int{0, 1, 2, 3, 4, 5, 6, 7}) || !reflect.DeepEqual(va, []int{8, 9}) {
		t.Errorf("unshuffled split %v %v", tr, va)
	}
}

func TestEpochBatches(t *testing.T) {
	lengths := make([]int, 1003)
	for i := range lengths {
		lengths[i] = (i * 7919) % 97
	}
	bs := EpochBatches(lengths, 8, 3, 0, true)
	if len(bs) != (1003+7)/8 {
		t.Fatalf("%d batches", len(bs))
	}
	seen := make(map[int]bool)
	small := 0
	waste := 0
	for _, b := range bs {
		if len(b) != 8 {
			small++
		}
		mx := 0
		for _, i := range b {
			seen[i] = true
			mx = max(mx, lengths[i])
		}
		for _, i := range b {
			waste += mx - lengths[i]
		}
	}
	if len(seen) != 1003 || small != 1 {
		t.Errorf("batches cover %d examples, %d short batches", len(seen), small)
	}
	if waste > 1003*3 {
		t.Errorf("length grouping wastes %d padding positions", waste)
	}
	if !reflect.DeepEqual(bs, EpochBatches(lengths, 8, 3, 0, true)) {
		t.Error("not deterministic")
	}
	if reflect.DeepEqual(bs, EpochBatches(lengths, 8, 3, 1, true)) {
		t.Error("epochs 0 and 1 have the same order")
	}
	plain := EpochBatches(lengths[:10], 4, 3, 0, false)
	if !reflect.DeepEqual(plain, [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}) {
		t.Errorf("unshuffled batches %v", plain)
	}
}
