package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization.
type normalizer interface {
	normalize(s string) string
}

type normalizerSeq []normalizer

func (q normalizerSeq) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(s string) string { return u.form.String(s) }

// prependNorm prepends to non-empty text, as the Rust library does.
type prependNorm string

func (p prependNorm) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

type replaceNorm struct {
	pat     matcher
	content string
}

func (r replaceNorm) normalize(s string) string { return replaceAll(s, r.pat, r.content) }

func replaceAll(s string, pat matcher, content string) string {
	if lit, ok := pat.(literalMatcher); ok {
		return strings.ReplaceAll(s, string(lit), content)
	}
	var b strings.Builder
	prev := 0
	for at := 0; at < len(s); {
		st, en := pat.find(s, at)
		if st < 0 {
			break
		}
		b.WriteString(s[prev:st])
		b.WriteString(content)
		prev, at = en, en
	}
	if prev == 0 {
		return s
	}
	b.WriteString(s[prev:])
	return b.String()
}

type lowercaseNorm struct{}

func (lowercaseNorm) normalize(s string) string { return strings.ToLower(s) }

type stripNorm struct{ left, right bool }

func (p stripNorm) normalize(s string) string {
	if p.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if p.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// stripAccentsNorm removes nonspacing marks (the Rust library expects an
// NFD normalizer before it).
type stripAccentsNorm struct{}

func (stripAccentsNorm) normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}

// newNormalizer builds a normalizer from its JSON; nil JSON means none.
func newNormalizer(raw json.RawMessage, path string) (normalizer, error) {
	c, err := readComponent(raw, path)
	if c == nil || err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var v struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		seq, err := buildSeq(v.Normalizers, path+".normalizers", newNormalizer)
		if err != nil {
			return nil, err
		}
		return normalizerSeq(seq), nil
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFD":
		return unicodeNorm{norm.NFD}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "NFKD":
		return unicodeNorm{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNorm{}, nil
	case "StripAccents":
		return stripAccentsNorm{}, nil
	case "Strip":
		var v struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		return stripNorm{v.Left, v.Right}, nil
	case "Prepend":
		var v struct {
			Prepend string `json:"prepend"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		return prependNorm(v.Prepend), nil
	case "Replace":
		var v struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		m, err := compilePattern(v.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return replaceNorm{m, v.Content}, nil
	}
	return nil, fmt.Errorf("%s: %w: normalizer type %q", path, ErrUnsupported, c.Type)
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}
