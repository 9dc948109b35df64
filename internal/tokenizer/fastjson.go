package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small scanner for the two large parts of tokenizer.json, model.vocab
// and model.merges, which encoding/json decodes several times slower
// (Qwen3's file holds 151k of each). Input has already been validated as
// JSON by encoding/json, but the scanner still reports malformed input
// instead of trusting it.
type scanner struct {
	b   []byte
	i   int
	buf []byte
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

// expect consumes c after optional whitespace.
func (s *scanner) expect(c byte) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return s.errorf("expected %q", c)
	}
	s.i++
	return nil
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str reads a JSON string.
func (s *scanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			v := string(s.b[start:s.i])
			s.i++
			return v, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", s.errorf("control character in string")
		}
		s.i++
	}
	// Slow path: escapes.
	s.buf = append(s.buf[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(s.buf), nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return "", s.errorf("truncated escape")
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				s.buf = append(s.buf, e)
			case 'b':
				s.buf = append(s.buf, '\b')
			case 'f':
				s.buf = append(s.buf, '\f')
			case 'n':
				s.buf = append(s.buf, '\n')
			case 'r':
				s.buf = append(s.buf, '\r')
			case 't':
				s.buf = append(s.buf, '\t')
			case 'u':
				r, err := s.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						save := s.i
						s.i += 2
						if r2, err = s.hex4(); err != nil {
							return "", err
						}
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
						} else {
							s.i = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				s.buf = utf8.AppendRune(s.buf, r)
			default:
				return "", s.errorf("bad escape \\%c", e)
			}
		case c < 0x20:
			return "", s.errorf("control character in string")
		default:
			s.buf = append(s.buf, c)
			s.i++
		}
	}
	return "", s.errorf("unterminated string")
}

func (s *scanner) hex4() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, s.errorf("truncated \\u escape")
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, s.errorf("bad \\u escape")
	}
	s.i += 4
	return rune(v), nil
}

// int reads a JSON integer.
func (s *scanner) int() (int, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil {
		return 0, s.errorf("expected an integer")
	}
	return v, nil
}

// parseVocab reads model.vocab: {"token": id, ...}.
func parseVocab(raw json.RawMessage) (map[string]int, error) {
	s := &scanner{b: raw}
	if err := s.expect('{'); err != nil {
		return nil, fmt.Errorf("model.vocab: %w", err)
	}
	vocab := make(map[string]int, len(raw)/16)
	if s.peek() == '}' {
		return vocab, nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return nil, fmt.Errorf("model.vocab: %w", err)
		}
		if err := s.expect(':'); err != nil {
			return nil, fmt.Errorf("model.vocab: %w", err)
		}
		v, err := s.int()
		if err != nil {
			return nil, fmt.Errorf("model.vocab[%q]: %w", k, err)
		}
		vocab[k] = v
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			return vocab, nil
		default:
			return nil, fmt.Errorf("model.vocab: %w", s.errorf("expected ',' or '}'"))
		}
	}
}

// parseMerges reads model.merges in either format: ["a b", ...] (the
// original) or [["a", "b"], ...] (tokenizers >= 0.20, which allows spaces
// inside tokens).
func parseMerges(raw json.RawMessage) ([]mergePair, error) {
	s := &scanner{b: raw}
	if c := s.peek(); c == 0 || c == 'n' {
		return nil, nil // absent or null
	}
	if err := s.expect('['); err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	out := make([]mergePair, 0, len(raw)/12)
	if s.peek() == ']' {
		return out, nil
	}
	for i := 0; ; i++ {
		var mp mergePair
		if s.peek() == '[' {
			s.i++
			a, err := s.str()
			if err == nil {
				err = s.expect(',')
			}
			var b string
			if err == nil {
				b, err = s.str()
			}
			if err == nil {
				err = s.expect(']')
			}
			if err != nil {
				return nil, fmt.Errorf("model.merges[%d]: want a pair of strings: %w", i, err)
			}
			mp = mergePair{a, b}
		} else {
			m, err := s.str()
			if err != nil {
				return nil, fmt.Errorf("model.merges[%d]: %w", i, err)
			}
			a, b, ok := cutSpace(m)
			if !ok {
				return nil, fmt.Errorf("model.merges[%d] = %q: want two tokens separated by a space", i, m)
			}
			mp = mergePair{a, b}
		}
		out = append(out, mp)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return out, nil
		default:
			return nil, fmt.Errorf("model.merges: %w", s.errorf("expected ',' or ']'"))
		}
	}
}
