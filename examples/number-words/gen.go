//go:build ignore

// gen writes number-words.jsonl: 300 prompt/completion examples that
// spell out integers below 1000 in English words, a small task with one
// right answer per prompt that generalises to numbers not in the file.
// Run from this directory: go run gen.go > number-words.jsonl. The
// numbers in examples.NumberWordsHeldOut never appear, so the demo can
// ask about them.
package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/gantryml/gantry/examples"
)

func main() {
	r := rand.New(rand.NewPCG(2026, 11))
	seen := map[int]bool{}
	enc := json.NewEncoder(os.Stdout)
	for len(seen) < 300 {
		n := r.IntN(1000)
		if seen[n] || slices.Contains(examples.NumberWordsHeldOut, n) {
			continue
		}
		seen[n] = true
		ex := struct {
			Prompt     string `json:"prompt"`
			Completion string `json:"completion"`
		}{examples.NumberWordsPrompt(n), examples.NumberWordsCompletion(n)}
		if err := enc.Encode(ex); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
