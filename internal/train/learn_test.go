package train

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// tinyModelDir writes the tiny preset with Gantry's byte-level tokenizer.
func tinyModelDir(t testing.TB, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	tj, cj := tokenizer.ByteLevelFiles()
	tok, err := tokenizer.Parse(tj, cj)
	if err != nil {
		t.Fatal(err)
	}
	bos, _ := tok.BOS()
	eos, _ := tok.EOS()
	if err := model.Init(context.Background(), dir, model.InitOptions{Preset: "tiny", Seed: seed, TokenizerJSON: tj, TokenizerConfigJSON: cj,
		VocabSize: tok.VocabSize(), BOS: &bos, EOS: &eos}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// codeWords is the task the learning tests train: each key maps to a fixed
// code word the model cannot guess.
var codeWords = [][2]string{
	{"France", "KEL"}, {"Peru", "ZOB"}, {"Japan", "MIV"}, {"Chile", "RAX"},
	{"Kenya", "TUP"}, {"Nepal", "WEG"}, {"Spain", "DOF"}, {"Egypt", "HIQ"},
}

// codeWordData writes n examples "country: X\ncode:" → " WORD".
func codeWordData(t testing.TB, n int, seed uint64) string {
	return codeWordDataAs(t, n, seed, false)
}

// codeWordDataAs writes the code-word task as prompt/completion examples,
// or as chats (user "country: X", assistant "WORD") when chat is set.
func codeWordDataAs(t testing.TB, n int, seed uint64, chat bool) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for range n {
		kw := codeWords[r.IntN(len(codeWords))]
		line, _ := json.Marshal(map[string]string{"prompt": "country: " + kw[0] + "\ncode:", "completion": " " + kw[1]})
		if chat {
			line, _ = json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": "country: " + kw[0]}, {"role": "assistant", "content": kw[1]}}})
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "data.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// evalSet returns loss and accuracy of the model in dir (with an optional
// adapter folded in) on the examples of data.
func evalSet(t testing.TB, cfg *model.Config, w *model.Weights, tok Tokenizer, data string) (float64, float64) {
	t.Helper()
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds, err := ReadDataset(f, tok, ReadOptions{MaxSeqLen: 64})
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.New(cfg, w, nn.Options{Method: nn.TFew}) // IA3 vectors start at one: the base model's function
	if err != nil {
		t.Fatal(err)
	}
	loss, acc, err := newEvaluator(ds.Examples, 16).run(context.Background(), net)
	if err != nil {
		t.Fatal(err)
	}
	return loss, acc
}

func TestItLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	for _, c := range []struct {
		method nn.Method
		lr     float64
		epochs int
		// minGen is how many of the 8 keys greedy generation must answer
		// exactly: (IA)³ only rescales a random 2-layer model's
		// activations, which leaves it little capacity, so it gets slack.
		minGen int
		chat   bool
	}{
		{nn.LoRA, 0.01, 10, 8, false},
		{nn.TFew, 2.0, 40, 6, false},
		{nn.Vanilla, 0.003, 4, 8, false},
		{nn.LoRA, 0.01, 25, 8, true},
	} {
		name := string(c.method)
		if c.chat {
			name += "-chat"
		}
		t.Run(name, func(t *testing.T) {
			dir := tinyModelDir(t, 1)
			data := codeWordDataAs(t, 120, 2, c.chat)
			out := t.TempDir()
			opt := Options{ModelDir: dir, DataPath: data, OutDir: out, Method: c.method}
			opt.Epochs, opt.LearningRate, opt.BatchSize, opt.Seed, opt.Shuffle, opt.LogInterval = c.epochs, c.lr, 8, 3, true, 10
			var first Metrics
			opt.OnMetrics = func(m Metrics) {
				if m.Step == 1 {
					first = m
				}
			}
			res, err := Run(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d steps, final val loss %.4f acc %.3f (first step loss %.3f)", c.method, res.Steps, res.FinalLoss, res.FinalAccuracy, first.TrainLoss)

			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			tk, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			tok := FromTokenizer(tk)
			_, baseAcc := evalSet(t, &m.Config, &m.Weights, tok, data)
			if err := res.Adapter.Merge(&m.Config, &m.Weights); err != nil {
				t.Fatal(err)
			}
			_, trainAcc := evalSet(t, &m.Config, &m.Weights, tok, data)
			t.Logf("accuracy on the data: untrained %.3f, trained %.3f", baseAcc, trainAcc)
			if trainAcc < 0.9 {
				t.Errorf("accuracy on the training data %.3f, want ≥ 0.9", trainAcc)
			}
			if res.FinalAccuracy < baseAcc+0.5 {
				t.Errorf("validation accuracy %.3f, untrained %.3f", res.FinalAccuracy, baseAcc)
			}
			// Greedy generation with the merged weights answers each key.
			right := 0
			imEnd, _ := tk.TokenID("<|im_end|>")
			for _, kw := range codeWords {
				prompt, want := tk.Encode("country: "+kw[0]+"\ncode:", true), " "+kw[1]
				if c.chat {
					text, err := tk.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: "country: " + kw[0]}}, true)
					if err != nil {
						t.Fatal(err)
					}
					prompt, want = tk.Encode(text, false), kw[1]
				}
				ids, err := m.Generate(context.Background(), prompt, model.GenerateOptions{MaxTokens: 6})
				if err != nil {
					t.Fatal(err)
				}
				if c.chat {
					// The reply ends with the template's end-of-turn token.
					if i := slices.Index(ids, imEnd); i >= 0 {
						ids = ids[:i]
					}
				}
				got := tk.Decode(ids, true)
				if got == want {
					right++
				} else {
					t.Logf("%s: generated %q, want %q", kw[0], got, want)
				}
			}
			if right < c.minGen {
				t.Errorf("generation answered %d of %d keys", right, len(codeWords))
			}
		})
	}
}
