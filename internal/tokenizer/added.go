package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// addedMatcher finds added tokens in text: leftmost, longest on ties, as
// the Rust library's Aho-Corasick (MatchKind::LeftmostLongest) does, with
// lstrip/rstrip absorbing neighbouring whitespace and single_word refusing
// matches inside words.
type addedMatcher struct {
	tokens  []*addedToken
	pattern map[*addedToken]string // the text matched: content, normalized for normSplit
	byFirst [256][]*addedToken     // by first byte of pattern, longest first
	any     bool
}

// section is a piece of text: an added token (id >= 0) or text for the
// model (id = -1). start is its byte offset in the text split.
type section struct {
	text  string
	id    int
	start int
}

func newAddedMatcher(toks []*addedToken, n normalizer) *addedMatcher {
	m := &addedMatcher{tokens: toks, pattern: map[*addedToken]string{}}
	for _, a := range toks {
		p := a.content
		if n != nil {
			p = n.normalize(p)
		}
		if p == "" {
			continue
		}
		m.pattern[a] = p
		m.byFirst[p[0]] = append(m.byFirst[p[0]], a)
		m.any = true
	}
	for _, l := range &m.byFirst {
		sort.SliceStable(l, func(i, j int) bool { return len(m.pattern[l[i]]) > len(m.pattern[l[j]]) })
	}
	return m
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r)
}

// split cuts s into sections around the added tokens it contains.
func (m *addedMatcher) split(s string) []section {
	if !m.any {
		return []section{{s, -1, 0}}
	}
	var out []section
	prev := 0 // end of the last match
	for i := 0; i < len(s); {
		cands := m.byFirst[s[i]]
		if cands == nil {
			i++
			continue
		}
		var hit *addedToken
		for _, a := range cands {
			p := m.pattern[a]
			if len(s)-i < len(p) || s[i:i+len(p)] != p {
				continue
			}
			if a.singleWord {
				if r, _ := utf8.DecodeLastRuneInString(s[:i]); i > 0 && isWordRune(r) {
					continue
				}
				if r, _ := utf8.DecodeRuneInString(s[i+len(p):]); i+len(p) < len(s) && isWordRune(r) {
					continue
				}
			}
			hit = a
			break
		}
		if hit == nil {
			i++
			continue
		}
		start, end := i, i+len(m.pattern[hit])
		if hit.lstrip {
			for start > prev {
				r, w := utf8.DecodeLastRuneInString(s[:start])
				if !isWS(r) {
					break
				}
				start -= w
			}
		}
		if hit.rstrip {
			for end < len(s) {
				r, w := utf8.DecodeRuneInString(s[end:])
				if !isWS(r) {
					break
				}
				end += w
			}
		}
		if start > prev {
			out = append(out, section{s[prev:start], -1, prev})
		}
		out = append(out, section{s[start:end], hit.id, start})
		prev, i = end, end
	}
	if prev < len(s) {
		out = append(out, section{s[prev:], -1, prev})
	}
	return out
}
