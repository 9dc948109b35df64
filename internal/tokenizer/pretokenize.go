package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// preTokenizer splits normalized text into the words the model encodes
// one at a time. first reports that pieces[0] begins the whole input
// (Metaspace's prepend_scheme "first" depends on it).
type preTokenizer interface {
	preTokenize(pieces []string, first bool) []string
}

type preSeq []preTokenizer

func (q preSeq) preTokenize(pieces []string, first bool) []string {
	for _, p := range q {
		pieces = p.preTokenize(pieces, first)
	}
	return pieces
}

// splitBehavior says what Split does with the text its pattern matches.
type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

// splitPre is the Split pre-tokenizer (and the splitting step of others).
type splitPre struct {
	pat      matcher
	behavior splitBehavior
	invert   bool
}

func (p splitPre) preTokenize(pieces []string, _ bool) []string {
	out := make([]string, 0, len(pieces)*4)
	for _, s := range pieces {
		out = p.split(out, s)
	}
	return out
}

// split appends the pieces of s to dst.
func (p splitPre) split(dst []string, s string) []string {
	type seg struct {
		start, end int
		delim      bool
	}
	// Matches are delimiters, or with invert the text between them is.
	var segs []seg
	prev := 0
	for at := 0; at < len(s); {
		st, en := p.pat.find(s, at)
		if st < 0 {
			break
		}
		if st > prev {
			segs = append(segs, seg{prev, st, p.invert})
		}
		segs = append(segs, seg{st, en, !p.invert})
		prev, at = en, en
	}
	if prev < len(s) {
		segs = append(segs, seg{prev, len(s), p.invert})
	}
	switch p.behavior {
	case splitIsolated:
		for _, g := range segs {
			dst = append(dst, s[g.start:g.end])
		}
	case splitRemoved:
		for _, g := range segs {
			if !g.delim {
				dst = append(dst, s[g.start:g.end])
			}
		}
	case splitMergedWithPrevious:
		// A delimiter joins the piece before it.
		start := -1
		for _, g := range segs {
			if start < 0 {
				start = g.start
			}
			if g.delim {
				dst = append(dst, s[start:g.end])
				start = -1
			}
		}
		if start >= 0 {
			dst = append(dst, s[start:])
		}
	case splitMergedWithNext:
		// A delimiter starts the piece after it.
		start := 0
		for i, g := range segs {
			if g.delim && g.start > start {
				dst = append(dst, s[start:g.start])
				start = g.start
			}
			if i == len(segs)-1 {
				dst = append(dst, s[start:g.end])
			}
		}
	case splitContiguous:
		// Runs of adjacent delimiters become one piece.
		for i := 0; i < len(segs); {
			j := i + 1
			if segs[i].delim {
				for j < len(segs) && segs[j].delim {
					j++
				}
			}
			dst = append(dst, s[segs[i].start:segs[j-1].end])
			i = j
		}
	}
	return dst
}

// byteLevelPre is the ByteLevel pre-tokenizer: optionally a leading space,
// optionally GPT-2's split, then every byte mapped to its byte-level rune.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (p byteLevelPre) preTokenize(pieces []string, _ bool) []string {
	out := make([]string, 0, len(pieces)*2)
	for _, s := range pieces {
		if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
			s = " " + s
		}
		if !p.useRegex {
			out = append(out, byteLevelString(s))
			continue
		}
		for at := 0; at < len(s); {
			st, en := gpt2Matcher{}.find(s, at)
			if st < 0 {
				break
			}
			out = append(out, byteLevelString(s[st:en]))
			at = en
		}
	}
	return out
}

// metaspacePre is the Metaspace pre-tokenizer: spaces become the
// replacement rune (▁), which is prepended per prepend_scheme, and with
// split the text is cut before each replacement rune.
type metaspacePre struct {
	replacement string
	prepend     string // "always", "first" or "never"
	split       bool
}

func (p metaspacePre) preTokenize(pieces []string, first bool) []string {
	out := make([]string, 0, len(pieces)*4)
	for i, s := range pieces {
		s = strings.ReplaceAll(s, " ", p.replacement)
		if !strings.HasPrefix(s, p.replacement) && (p.prepend == "always" || (p.prepend == "first" && first && i == 0)) {
			s = p.replacement + s
		}
		if !p.split {
			out = append(out, s)
			continue
		}
		out = splitPre{pat: literalMatcher(p.replacement), behavior: splitMergedWithNext}.split(out, s)
	}
	return out
}

// digitsPre isolates runs of digits (or each digit).
type digitsPre struct{ individual bool }

func (p digitsPre) preTokenize(pieces []string, _ bool) []string {
	beh := splitContiguous
	if p.individual {
		beh = splitIsolated
	}
	sp := splitPre{pat: funcMatcher(unicode.IsNumber), behavior: beh}
	return sp.preTokenize(pieces, false)
}

// funcMatcher matches every single rune for which it returns true.
type funcMatcher func(rune) bool

func (f funcMatcher) find(s string, at int) (int, int) {
	for i, r := range s[at:] {
		if f(r) {
			w := len(string(r))
			return at + i, at + i + w
		}
	}
	return -1, -1
}

// whitespaceSplitPre splits on whitespace, dropping it.
type whitespaceSplitPre struct{}

func (whitespaceSplitPre) preTokenize(pieces []string, _ bool) []string {
	var out []string
	for _, s := range pieces {
		out = append(out, strings.FieldsFunc(s, isWS)...)
	}
	return out
}

// whitespacePre is `\w+|[^\w\s]+`.
type whitespacePre struct{}

func (whitespacePre) preTokenize(pieces []string, _ bool) []string {
	isWord := func(r rune) bool {
		return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r)
	}
	var out []string
	for _, s := range pieces {
		start, kind := -1, 0 // kind 1: word run, 2: other run
		for i, r := range s {
			k := 2
			if isWord(r) {
				k = 1
			} else if isWS(r) {
				k = 0
			}
			if k != kind {
				if kind != 0 {
					out = append(out, s[start:i])
				}
				start, kind = i, k
			}
		}
		if kind != 0 {
			out = append(out, s[start:])
		}
	}
	return out
}

func newPreTokenizer(raw json.RawMessage, path string) (preTokenizer, error) {
	c, err := readComponent(raw, path)
	if c == nil || err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var v struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		seq, err := buildSeq(v.PreTokenizers, path+".pretokenizers", newPreTokenizer)
		if err != nil {
			return nil, err
		}
		return preSeq(seq), nil
	case "Split":
		var v struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		m, err := compilePattern(v.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%s.pattern: %w", path, err)
		}
		var b splitBehavior
		switch v.Behavior {
		case "Removed":
			b = splitRemoved
		case "Isolated":
			b = splitIsolated
		case "MergedWithPrevious":
			b = splitMergedWithPrevious
		case "MergedWithNext":
			b = splitMergedWithNext
		case "Contiguous":
			b = splitContiguous
		default:
			return nil, fmt.Errorf("%s: %w: split behavior %q", path, ErrUnsupported, v.Behavior)
		}
		return splitPre{pat: m, behavior: b, invert: v.Invert}, nil
	case "ByteLevel":
		v := struct {
			AddPrefixSpace bool `json:"add_prefix_space"`
			UseRegex       bool `json:"use_regex"`
		}{UseRegex: true}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		return byteLevelPre{v.AddPrefixSpace, v.UseRegex}, nil
	case "Metaspace":
		v := struct {
			Replacement    string  `json:"replacement"`
			PrependScheme  string  `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			Split          *bool   `json:"split"`
			StrRep         *string `json:"str_rep"`
		}{Replacement: "▁"}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		scheme := v.PrependScheme
		if scheme == "" {
			scheme = "always"
			if v.AddPrefixSpace != nil && !*v.AddPrefixSpace {
				scheme = "never"
			}
		}
		if scheme != "always" && scheme != "first" && scheme != "never" {
			return nil, fmt.Errorf("%s: unknown prepend_scheme %q", path, scheme)
		}
		if v.Replacement == "" {
			return nil, fmt.Errorf("%s: empty replacement", path)
		}
		return metaspacePre{replacement: v.Replacement, prepend: scheme, split: v.Split == nil || *v.Split}, nil
	case "Digits":
		var v struct {
			Individual bool `json:"individual_digits"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		return digitsPre{v.Individual}, nil
	case "WhitespaceSplit":
		return whitespaceSplitPre{}, nil
	case "Whitespace":
		return whitespacePre{}, nil
	}
	return nil, fmt.Errorf("%s: %w: pre-tokenizer type %q", path, ErrUnsupported, c.Type)
}
