package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matcher finds the leftmost match of a pattern in s at or after byte
// offset at; it returns start = -1 when there is none. Matches are never
// empty.
type matcher interface {
	find(s string, at int) (start, end int)
}

// Known pre-tokenizer regexes. Go's regexp has no lookahead, so these are
// matched by hand-written functions that follow Oniguruma's backtracking
// semantics for exactly these patterns: alternatives are tried in order
// and the first that matches wins; \s is Unicode White_Space.
const (
	// gpt2Pattern is GPT-2's, also the ByteLevel pre-tokenizer's built-in.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Pattern is Llama 3's (tiktoken cl100k_base).
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwenPattern is Qwen2's and Qwen3's: Llama 3's with single digits.
	qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// compilePattern builds the matcher for a Split or Replace pattern.
func compilePattern(p patternJSON) (matcher, error) {
	switch {
	case p.String != nil:
		if *p.String == "" {
			return nil, fmt.Errorf("empty String pattern")
		}
		return literalMatcher(*p.String), nil
	case p.Regex != nil:
		return compileRegex(*p.Regex)
	}
	return nil, fmt.Errorf("pattern has neither String nor Regex")
}

func compileRegex(re string) (matcher, error) {
	switch re {
	case gpt2Pattern:
		return gpt2Matcher{}, nil
	case llama3Pattern:
		return llama3Matcher{maxDigits: 3}, nil
	case qwenPattern:
		return llama3Matcher{maxDigits: 1}, nil
	}
	// Anything else must mean the same in Go's RE2 syntax once the Perl
	// classes are made Unicode-aware as Oniguruma's are.
	tr, err := translateRegex(re)
	if err != nil {
		return nil, fmt.Errorf("unsupported regex %q: %w", re, err)
	}
	rx, err := regexp.Compile(tr)
	if err != nil {
		return nil, fmt.Errorf("unsupported regex %q: %w", re, err)
	}
	return regexMatcher{rx}, nil
}

// whiteSpaceClass is Unicode's White_Space property, Oniguruma's \s.
const whiteSpaceClass = `\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

// translateRegex rewrites an Oniguruma pattern for Go's regexp: \s and \S
// become Unicode White_Space, \d becomes \p{Nd}. Lookaround, backreferences
// and possessive or atomic groups are refused.
func translateRegex(re string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\' && i+1 < len(re):
			n := re[i+1]
			i++
			switch n {
			case 's':
				if inClass {
					b.WriteString(whiteSpaceClass)
				} else {
					b.WriteString("[" + whiteSpaceClass + "]")
				}
			case 'S':
				if inClass {
					return "", fmt.Errorf(`\S inside a character class`)
				}
				b.WriteString("[^" + whiteSpaceClass + "]")
			case 'd':
				b.WriteString(`\p{Nd}`)
			case 'D':
				b.WriteString(`\P{Nd}`)
			case 'w', 'W', 'b', 'B', 'G', 'h', 'H', 'A', 'z', 'Z', 'k', 'g':
				return "", fmt.Errorf(`\%c is not supported`, n)
			default:
				if n >= '1' && n <= '9' {
					return "", fmt.Errorf("backreferences are not supported")
				}
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			if i+1 < len(re) && re[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(re) && re[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		case c == '(' && !inClass && i+2 < len(re) && re[i+1] == '?' && strings.ContainsRune("=!<>", rune(re[i+2])):
			return "", fmt.Errorf("lookaround and atomic groups are not supported")
		case (c == '+' || c == '*' || c == '?' || c == '}') && !inClass && i+1 < len(re) && re[i+1] == '+':
			return "", fmt.Errorf("possessive quantifiers are not supported")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

type regexMatcher struct{ rx *regexp.Regexp }

func (m regexMatcher) find(s string, at int) (int, int) {
	for at <= len(s) {
		loc := m.rx.FindStringIndex(s[at:])
		if loc == nil {
			return -1, -1
		}
		if loc[1] > loc[0] {
			return at + loc[0], at + loc[1]
		}
		// Skip an empty match and look again one rune later.
		_, w := utf8.DecodeRuneInString(s[at+loc[0]:])
		if w == 0 {
			return -1, -1
		}
		at += loc[0] + w
	}
	return -1, -1
}

type literalMatcher string

func (m literalMatcher) find(s string, at int) (int, int) {
	i := strings.Index(s[at:], string(m))
	if i < 0 {
		return -1, -1
	}
	return at + i, at + i + len(m)
}

// isWS reports whether r is Unicode White_Space (Oniguruma's \s).
func isWS(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

func isL(r rune) bool {
	if r < utf8.RuneSelf {
		return (r|0x20) >= 'a' && (r|0x20) <= 'z'
	}
	return unicode.IsLetter(r)
}

func isN(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.IsNumber(r)
}

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isWS(r) && !isL(r) && !isN(r) }

// runeAt decodes the rune at byte offset i; size 0 at the end.
func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// span returns the end of the run of runes from i that satisfy f, and
// the number of runes in it (counting at most max when max > 0).
func span(s string, i int, f func(rune) bool, max int) (end, n int) {
	for i < len(s) && (max <= 0 || n < max) {
		r, w := runeAt(s, i)
		if !f(r) {
			break
		}
		i += w
		n++
	}
	return i, n
}

// matchWhitespaceTail handles the common tail `\s+(?!\S)|\s+`: a run of
// whitespace that is followed by a non-space gives up its last rune to
// the word that follows, unless it is a single rune.
func matchWhitespaceTail(s string, i int) int {
	end, n := span(s, i, isWS, 0)
	if n == 0 {
		return -1
	}
	if end == len(s) || n == 1 {
		return end
	}
	_, w := utf8.DecodeLastRuneInString(s[:end])
	return end - w
}

// matchContraction matches 's|'t|'re|'ve|'m|'ll|'d at i; with fold, case
// insensitively under Unicode simple case folding (so 'ſ' matches s).
func matchContraction(s string, i int, fold bool) int {
	if i >= len(s) || s[i] != '\'' {
		return -1
	}
	eq := func(r rune, c byte) bool {
		if r == rune(c) {
			return true
		}
		if !fold {
			return false
		}
		if r == rune(c)-32 {
			return true
		}
		return c == 's' && r == 'ſ'
	}
	r1, w1 := runeAt(s, i+1)
	if w1 == 0 {
		return -1
	}
	for _, c := range []byte{'s', 't', 'm', 'd'} {
		if eq(r1, c) {
			return i + 1 + w1
		}
	}
	r2, w2 := runeAt(s, i+1+w1)
	if w2 == 0 {
		return -1
	}
	for _, p := range [][2]byte{{'r', 'e'}, {'v', 'e'}, {'l', 'l'}} {
		if eq(r1, p[0]) && eq(r2, p[1]) {
			return i + 1 + w1 + w2
		}
	}
	return -1
}

// gpt2Matcher implements gpt2Pattern.
type gpt2Matcher struct{}

func (gpt2Matcher) find(s string, at int) (int, int) {
	for i := at; i < len(s); {
		if e := gpt2MatchAt(s, i); e > i {
			return i, e
		}
		_, w := runeAt(s, i)
		i += w
	}
	return -1, -1
}

func gpt2MatchAt(s string, i int) int {
	if e := matchContraction(s, i, false); e > 0 {
		return e
	}
	j := i
	if s[j] == ' ' {
		j++
	}
	// ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: when the optional space
	// is taken but the class fails, retrying without it cannot succeed,
	// because a space is in none of the three classes.
	for _, f := range []func(rune) bool{isL, isN, isOther} {
		if e, n := span(s, j, f, 0); n > 0 {
			return e
		}
	}
	return matchWhitespaceTail(s, i)
}

// llama3Matcher implements llama3Pattern (maxDigits 3) and qwenPattern
// (maxDigits 1).
type llama3Matcher struct{ maxDigits int }

func (m llama3Matcher) find(s string, at int) (int, int) {
	for i := at; i < len(s); {
		if e := m.matchAt(s, i); e > i {
			return i, e
		}
		_, w := runeAt(s, i)
		i += w
	}
	return -1, -1
}

func (m llama3Matcher) matchAt(s string, i int) int {
	if e := matchContraction(s, i, true); e > 0 {
		return e
	}
	r, w := runeAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if r != '\r' && r != '\n' && !isL(r) && !isN(r) {
		if e, n := span(s, i+w, isL, 0); n > 0 {
			return e
		}
	} else if isL(r) {
		e, _ := span(s, i, isL, 0)
		return e
	}
	// \p{N}{1,n}
	if isN(r) {
		e, _ := span(s, i, isN, m.maxDigits)
		return e
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r == ' ' {
		j++
	}
	if e, n := span(s, j, isOther, 0); n > 0 {
		e, _ = span(s, e, func(r rune) bool { return r == '\r' || r == '\n' }, 0)
		return e
	}
	// \s*[\r\n]+ : the whitespace run up to and including its last newline.
	end, n := span(s, i, isWS, 0)
	if n == 0 {
		return -1
	}
	if k := strings.LastIndexAny(s[i:end], "\r\n"); k >= 0 {
		return i + k + 1
	}
	return matchWhitespaceTail(s, i)
}
