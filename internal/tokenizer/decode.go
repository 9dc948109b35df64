package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder turns the token strings of a sequence back into text pieces,
// which are then concatenated. Like the Rust library's decode_chain, each
// step maps a list of strings to a list of strings.
type decoder interface {
	decodeChain(tokens []string) []string
}

type decoderSeq []decoder

func (q decoderSeq) decodeChain(t []string) []string {
	for _, d := range q {
		t = d.decodeChain(t)
	}
	return t
}

// byteLevelDec maps byte-level runes back to bytes. The bytes of adjacent
// tokens are joined before UTF-8 decoding, because a character's bytes
// may be spread over several tokens.
type byteLevelDec struct{}

func (byteLevelDec) decodeChain(t []string) []string {
	var buf []byte
	for _, s := range t {
		buf = appendByteLevelDecoded(buf, s)
	}
	return []string{lossyUTF8(buf)}
}

type replaceDec struct {
	pat     matcher
	content string
}

func (r replaceDec) decodeChain(t []string) []string {
	out := make([]string, len(t))
	for i, s := range t {
		out[i] = replaceAll(s, r.pat, r.content)
	}
	return out
}

// byteFallbackDec turns runs of <0xNN> tokens into the text their bytes
// spell; a run that is not valid UTF-8 becomes one U+FFFD per byte, as the
// Rust library does.
type byteFallbackDec struct{}

func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

func (byteFallbackDec) decodeChain(t []string) []string {
	out := make([]string, 0, len(t))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, s := range t {
		if b, ok := parseByteToken(s); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, s)
	}
	flush()
	return out
}

type fuseDec struct{}

func (fuseDec) decodeChain(t []string) []string { return []string{strings.Join(t, "")} }

// stripDec removes up to start leading and stop trailing copies of content
// from each token.
type stripDec struct {
	content     string
	start, stop int
}

func (d stripDec) decodeChain(t []string) []string {
	out := make([]string, len(t))
	for i, s := range t {
		for k := 0; k < d.start && d.content != "" && strings.HasPrefix(s, d.content); k++ {
			s = s[len(d.content):]
		}
		for k := 0; k < d.stop && d.content != "" && strings.HasSuffix(s, d.content); k++ {
			s = s[:len(s)-len(d.content)]
		}
		out[i] = s
	}
	return out
}

// metaspaceDec turns the replacement rune back into spaces and drops the
// space a prepend_scheme other than "never" put before the first token.
type metaspaceDec struct {
	replacement string
	prepend     bool
}

func (d metaspaceDec) decodeChain(t []string) []string {
	out := make([]string, len(t))
	for i, s := range t {
		s = strings.ReplaceAll(s, d.replacement, " ")
		if i == 0 && d.prepend {
			s = strings.TrimPrefix(s, " ")
		}
		out[i] = s
	}
	return out
}

func newDecoder(raw json.RawMessage, path string) (decoder, error) {
	c, err := readComponent(raw, path)
	if c == nil || err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var v struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		seq, err := buildSeq(v.Decoders, path+".decoders", newDecoder)
		if err != nil {
			return nil, err
		}
		return decoderSeq(seq), nil
	case "ByteLevel":
		return byteLevelDec{}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Fuse":
		return fuseDec{}, nil
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
		return replaceDec{m, v.Content}, nil
	case "Strip":
		var v struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		return stripDec{v.Content, v.Start, v.Stop}, nil
	case "Metaspace":
		v := struct {
			Replacement    string `json:"replacement"`
			PrependScheme  string `json:"prepend_scheme"`
			AddPrefixSpace *bool  `json:"add_prefix_space"`
		}{Replacement: "▁"}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		prepend := v.PrependScheme != "never"
		if v.PrependScheme == "" && v.AddPrefixSpace != nil {
			prepend = *v.AddPrefixSpace
		}
		return metaspaceDec{v.Replacement, prepend}, nil
	}
	return nil, fmt.Errorf("%s: %w: decoder type %q", path, ErrUnsupported, c.Type)
}

// postProcessor adds the special tokens a template asks for.
type postProcessor interface {
	process(ids []int, addSpecial bool) []int
}

type postSeq []postProcessor

func (q postSeq) process(ids []int, add bool) []int {
	for _, p := range q {
		ids = p.process(ids, add)
	}
	return ids
}

// templatePost is TemplateProcessing's single-sequence template: a list of
// items, each either the sequence (nil) or the ids of a special token.
type templatePost struct {
	items [][]int
}

func (p templatePost) process(ids []int, add bool) []int {
	if !add {
		return ids
	}
	n := len(ids)
	for _, it := range p.items {
		n += len(it)
	}
	out := make([]int, 0, n)
	for _, it := range p.items {
		if it == nil {
			out = append(out, ids...)
		} else {
			out = append(out, it...)
		}
	}
	return out
}

// noPost is a post-processor that adds nothing (ByteLevel's only changes
// offsets).
type noPost struct{}

func (noPost) process(ids []int, _ bool) []int { return ids }

// newPostProcessor builds a post-processor from its JSON.
func newPostProcessor(raw json.RawMessage, path string) (postProcessor, error) {
	c, err := readComponent(raw, path)
	if c == nil || err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var v struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		seq, err := buildSeq(v.Processors, path+".processors", newPostProcessor)
		if err != nil {
			return nil, err
		}
		return postSeq(seq), nil
	case "ByteLevel":
		return noPost{}, nil
	case "TemplateProcessing":
		var v struct {
			Single []struct {
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			} `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		var p templatePost
		for i, it := range v.Single {
			switch {
			case it.Sequence != nil:
				p.items = append(p.items, nil)
			case it.SpecialToken != nil:
				st, ok := v.SpecialTokens[it.SpecialToken.ID]
				if !ok || len(st.IDs) == 0 {
					return nil, fmt.Errorf("%s.single[%d]: special token %q missing from special_tokens", path, i, it.SpecialToken.ID)
				}
				for _, id := range st.IDs {
					if id < 0 || id > maxID {
						return nil, fmt.Errorf("%s.special_tokens[%q]: id %d out of range", path, it.SpecialToken.ID, id)
					}
				}
				p.items = append(p.items, st.IDs)
			default:
				return nil, fmt.Errorf("%s.single[%d]: neither SpecialToken nor Sequence", path, i)
			}
		}
		return p, nil
	case "RobertaProcessing", "BertProcessing":
		var v struct {
			Cls []json.RawMessage `json:"cls"`
			Sep []json.RawMessage `json:"sep"`
		}
		if err := c.decode(&v); err != nil {
			return nil, err
		}
		get := func(name string, pair []json.RawMessage) (int, error) {
			if len(pair) != 2 {
				return 0, fmt.Errorf("%s.%s: want [token, id]", path, name)
			}
			var id int
			if err := json.Unmarshal(pair[1], &id); err != nil || id < 0 || id > maxID {
				return 0, fmt.Errorf("%s.%s: bad id %s", path, name, pair[1])
			}
			return id, nil
		}
		cls, err := get("cls", v.Cls)
		if err != nil {
			return nil, err
		}
		sep, err := get("sep", v.Sep)
		if err != nil {
			return nil, err
		}
		return templatePost{items: [][]int{{cls}, nil, {sep}}}, nil
	}
	return nil, fmt.Errorf("%s: %w: post-processor type %q", path, ErrUnsupported, c.Type)
}
