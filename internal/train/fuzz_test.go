package train

import (
	"errors"
	"strings"
	"testing"
)

// FuzzReadDataset feeds arbitrary files to the dataset reader: it must
// return a dataset or an error, never panic, and every example it accepts
// must fit the length limit and carry loss.
func FuzzReadDataset(f *testing.F) {
	f.Add(strings.Join(goodLines(10), "\n"), 16)
	f.Add(`{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}`+"\n"+strings.Join(goodLines(10), "\n"), 8)
	f.Add("{\"prompt\": \"\xff\"}\n\n\r\n[1,2]\nnull\n{}", 4)
	f.Add(`{"prompt": "aaaaaaaaaaaaaaaa", "completion": "bbbbbbbbbbbbbbbbbbbbb"}`, 2)
	f.Fuzz(func(t *testing.T, data string, maxLen int) {
		maxLen = 2 + abs(maxLen)%64
		ds, err := ReadDataset(strings.NewReader(data), byteTok{}, ReadOptions{MaxSeqLen: maxLen})
		if err != nil {
			var de *DatasetError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DatasetError", err)
			}
			return
		}
		for _, ex := range ds.Examples {
			if len(ex.Tokens) > maxLen || len(ex.Tokens) != len(ex.Trained) || ex.LossTokens() == 0 {
				t.Fatalf("line %d: %d tokens (max %d), %d loss tokens", ex.Line, len(ex.Tokens), maxLen, ex.LossTokens())
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
