//go:build ignore

// gen writes number-words.jsonl: 300 prompt/completion examples that
// spell out integers below 1000 in English words, a small task with one
// right answer per prompt that generalises to numbers not in the file.
// Run: go run gen.go > number-words.jsonl. The numbers listed in heldOut
// never appear, so the demo can ask about them.
package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
)

var heldOut = map[int]bool{42: true, 317: true, 560: true, 808: true, 999: true, 73: true}

var ones = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
	"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
var tens = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

// words spells n (0 <= n < 1000) as US English writes it, without "and".
func words(n int) string {
	var parts []string
	if n >= 100 {
		parts = append(parts, ones[n/100]+" hundred")
		n %= 100
		if n == 0 {
			return strings.Join(parts, " ")
		}
	}
	switch {
	case n < 20:
		parts = append(parts, ones[n])
	case n%10 == 0:
		parts = append(parts, tens[n/10])
	default:
		parts = append(parts, tens[n/10]+"-"+ones[n%10])
	}
	return strings.Join(parts, " ")
}

func main() {
	r := rand.New(rand.NewPCG(2026, 11))
	seen := map[int]bool{}
	enc := json.NewEncoder(os.Stdout)
	for len(seen) < 300 {
		n := r.IntN(1000)
		if seen[n] || heldOut[n] {
			continue
		}
		seen[n] = true
		ex := struct {
			Prompt     string `json:"prompt"`
			Completion string `json:"completion"`
		}{fmt.Sprintf("Spell out %d:", n), " " + words(n) + "."}
		if err := enc.Encode(ex); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
