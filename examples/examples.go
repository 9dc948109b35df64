// Package examples holds Gantry's bundled sample data, embedded so that
// `gantry demo` runs offline from a single binary: the number-words
// fine-tuning dataset and the rule that made it.
package examples

import (
	_ "embed"
	"fmt"
	"strings"
)

// NumberWordsJSONL is number-words/number-words.jsonl: 300 prompt/completion
// examples, {"prompt": "Spell out 366:", "completion": " three hundred
// sixty-six."}, for integers below 1000 except NumberWordsHeldOut.
//
//go:embed number-words/number-words.jsonl
var NumberWordsJSONL []byte

// NumberWordsHeldOut are the numbers the dataset never contains, so that
// the demo can ask about them. The slice must not be modified.
var NumberWordsHeldOut = []int{42, 73, 317, 560, 808, 999}

// NumberWordsPrompt is the prompt of the dataset's example for n.
func NumberWordsPrompt(n int) string { return fmt.Sprintf("Spell out %d:", n) }

// NumberWordsCompletion is the completion of the dataset's example for n
// (0 <= n < 1000): a space, n in words as US English writes it (without
// "and", with hyphenated tens), and a period. It returns "" for n out of
// range.
func NumberWordsCompletion(n int) string {
	if n < 0 || n >= 1000 {
		return ""
	}
	return " " + SpellNumber(n) + "."
}

var ones = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
	"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
var tens = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

// SpellNumber spells n (0 <= n < 1000) in English words, without "and"
// ("three hundred sixty-six"); it returns "" for n out of range.
func SpellNumber(n int) string {
	if n < 0 || n >= 1000 {
		return ""
	}
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
