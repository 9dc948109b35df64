package chattemplate

import (
	"fmt"
	"strings"
)

// Tag kinds of the template source.
const (
	tagText    = iota
	tagVar     // {{ ... }}
	tagBlock   // {% ... %}
	tagComment // {# ... #}
)

// piece is a stretch of template source: literal text or a tag's inner
// source, with the whitespace-control marks around it.
type piece struct {
	kind      int
	src       string
	pos       int  // byte offset in the template, for errors
	dashLeft  bool // {{- {%- {#-
	dashRight bool // -}} -%} -#}
	plusLeft  bool // {%+ : no lstrip_blocks
	plusRight bool // +%} : no trim_blocks
}

// splitTemplate cuts src into text and tags and applies whitespace
// control as Hugging Face transformers configures Jinja: trim_blocks and
// lstrip_blocks on, explicit "-" marks, and one trailing newline dropped.
func splitTemplate(src string) ([]piece, error) {
	var ps []piece
	i := 0
	for i < len(src) {
		j := strings.Index(src[i:], "{")
		for j >= 0 {
			k := i + j
			if k+1 < len(src) && (src[k+1] == '{' || src[k+1] == '%' || src[k+1] == '#') {
				break
			}
			n := strings.Index(src[k+1:], "{")
			if n < 0 {
				j = -1
				break
			}
			j += n + 1
		}
		if j < 0 {
			ps = append(ps, piece{kind: tagText, src: src[i:], pos: i})
			break
		}
		start := i + j
		if start > i {
			ps = append(ps, piece{kind: tagText, src: src[i:start], pos: i})
		}
		var kind int
		var closer string
		switch src[start+1] {
		case '{':
			kind, closer = tagVar, "}}"
		case '%':
			kind, closer = tagBlock, "%}"
		default:
			kind, closer = tagComment, "#}"
		}
		p := piece{kind: kind, pos: start}
		body := start + 2
		if body < len(src) && src[body] == '-' {
			p.dashLeft = true
			body++
		} else if body < len(src) && src[body] == '+' && kind != tagVar {
			p.plusLeft = true
			body++
		}
		end := findCloser(src, body, closer, kind)
		if end < 0 {
			return nil, fmt.Errorf("offset %d: unclosed %s", start, src[start:start+2])
		}
		inner := src[body:end]
		if strings.HasSuffix(inner, "-") {
			p.dashRight = true
			inner = inner[:len(inner)-1]
		} else if strings.HasSuffix(inner, "+") && kind != tagVar {
			p.plusRight = true
			inner = inner[:len(inner)-1]
		}
		p.src = inner
		ps = append(ps, p)
		i = end + len(closer)
	}
	applyWhitespace(ps)
	if n := len(ps); n > 0 && ps[n-1].kind == tagText {
		s := ps[n-1].src
		if strings.HasSuffix(s, "\r\n") {
			ps[n-1].src = s[:len(s)-2]
		} else if strings.HasSuffix(s, "\n") {
			ps[n-1].src = s[:len(s)-1]
		}
	}
	return ps, nil
}

// findCloser finds the closing delimiter of a tag, skipping string
// literals inside expressions.
func findCloser(src string, from int, closer string, kind int) int {
	if kind == tagComment {
		k := strings.Index(src[from:], closer)
		if k < 0 {
			return -1
		}
		return from + k
	}
	var quote byte
	for i := from; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case strings.HasPrefix(src[i:], closer):
			return i
		}
	}
	return -1
}

func applyWhitespace(ps []piece) {
	// lstrip_blocks is decided on the source as written, before any
	// trimming: the tag must be preceded on its line by spaces and tabs only.
	lstrip := make([]bool, len(ps))
	for i, p := range ps {
		if p.kind != tagBlock && p.kind != tagComment || p.plusLeft || p.dashLeft || i == 0 || ps[i-1].kind != tagText {
			continue
		}
		t := strings.TrimRight(ps[i-1].src, " \t")
		lstrip[i] = strings.HasSuffix(t, "\n") || (t == "" && i-1 == 0)
	}
	for i := range ps {
		p := &ps[i]
		if p.kind == tagText {
			continue
		}
		stmt := p.kind == tagBlock || p.kind == tagComment
		if i > 0 && ps[i-1].kind == tagText {
			prev := &ps[i-1]
			if p.dashLeft {
				prev.src = strings.TrimRight(prev.src, " \t\r\n\v\f")
			} else if lstrip[i] {
				prev.src = strings.TrimRight(prev.src, " \t")
			}
		}
		if i+1 < len(ps) && ps[i+1].kind == tagText {
			next := &ps[i+1]
			switch {
			case p.dashRight:
				next.src = strings.TrimLeft(next.src, " \t\r\n\v\f")
			case stmt && !p.plusRight:
				// trim_blocks: drop the first newline after the tag.
				if strings.HasPrefix(next.src, "\r\n") {
					next.src = next.src[2:]
				} else if strings.HasPrefix(next.src, "\n") {
					next.src = next.src[1:]
				}
			}
		}
	}
}
