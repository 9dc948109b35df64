package chattemplate

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expression tokens.
const (
	tokEOF = iota
	tokName
	tokString
	tokInt
	tokFloat
	tokOp
)

type token struct {
	kind int
	s    string // name, operator, or decoded string literal
	n    int64
	f    float64
}

// lexExpr tokenizes the inside of a tag.
func lexExpr(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '_' || (c|0x20) >= 'a' && (c|0x20) <= 'z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || (src[j]|0x20) >= 'a' && (src[j]|0x20) <= 'z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{kind: tokName, s: src[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '_') {
				j++
			}
			isFloat := false
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				isFloat = true
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			lit := strings.ReplaceAll(src[i:j], "_", "")
			if isFloat {
				f, err := strconv.ParseFloat(lit, 64)
				if err != nil {
					return nil, fmt.Errorf("bad number %q", lit)
				}
				toks = append(toks, token{kind: tokFloat, f: f})
			} else {
				n, err := strconv.ParseInt(lit, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("bad number %q", lit)
				}
				toks = append(toks, token{kind: tokInt, n: n})
			}
			i = j
		case c == '\'' || c == '"':
			s, n, err := unquote(src[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, s: s})
			i += n
		default:
			op := ""
			for _, o := range []string{"//", "**", "==", "!=", "<=", ">="} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("()[]{},:.|~+-*/%<>=", rune(c)) {
					return nil, fmt.Errorf("unexpected character %q", c)
				}
				op = string(c)
			}
			toks = append(toks, token{kind: tokOp, s: op})
			i += len(op)
		}
	}
	return append(toks, token{kind: tokEOF}), nil
}

// unquote decodes a Python string literal at the start of s and returns
// it with the number of bytes it spans.
func unquote(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == q {
			return b.String(), i + 1, nil
		}
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'u', 'x', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+n >= len(s) {
				return "", 0, fmt.Errorf("bad \\%c escape", e)
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil || !utf8.ValidRune(rune(v)) {
				return "", 0, fmt.Errorf("bad \\%c escape", e)
			}
			b.WriteRune(rune(v))
			i += n
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// Expression nodes.
type expr interface{}

type (
	litExpr  struct{ v value }
	nameExpr struct{ name string }
	listExpr struct{ items []expr }
	dictExpr struct{ keys, vals []expr }
	attrExpr struct {
		x    expr
		name string
	}
	indexExpr struct{ x, i expr }
	sliceExpr struct{ x, lo, hi, step expr }
	callExpr  struct {
		fn     expr
		args   []expr
		kwargs []kwarg
	}
	filterExpr struct {
		x      expr
		name   string
		args   []expr
		kwargs []kwarg
	}
	testExpr struct {
		x    expr
		name string
		args []expr
		neg  bool
	}
	unaryExpr struct {
		op string
		x  expr
	}
	binExpr struct {
		op   string
		l, r expr
	}
	condExpr struct{ cond, yes, no expr }
)

type kwarg struct {
	name string
	x    expr
}

// parser is a recursive-descent parser over one tag's tokens.
type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tokOp && t.s == s
}
func (p *parser) isName(s string) bool {
	t := p.peek()
	return t.kind == tokName && t.s == s
}
func (p *parser) expectOp(s string) error {
	if !p.isOp(s) {
		return fmt.Errorf("expected %q, found %s", s, p.describe())
	}
	p.i++
	return nil
}
func (p *parser) describe() string {
	t := p.peek()
	switch t.kind {
	case tokEOF:
		return "end of tag"
	case tokString:
		return strconv.Quote(t.s)
	case tokInt:
		return strconv.FormatInt(t.n, 10)
	case tokFloat:
		return strconv.FormatFloat(t.f, 'g', -1, 64)
	}
	return strconv.Quote(t.s)
}
func (p *parser) name() (string, error) {
	t := p.peek()
	if t.kind != tokName {
		return "", fmt.Errorf("expected a name, found %s", p.describe())
	}
	p.i++
	return t.s, nil
}

// parseExpr parses a full expression, conditional expressions included.
func (p *parser) parseExpr() (expr, error) {
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.isName("if") {
		p.i++
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var no expr = litExpr{undefined{}}
		if p.isName("else") {
			p.i++
			if no, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		return condExpr{cond, x, no}, nil
	}
	return x, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	for err == nil && p.isName("or") {
		p.i++
		var r expr
		if r, err = p.parseAnd(); err == nil {
			l = binExpr{"or", l, r}
		}
	}
	return l, err
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	for err == nil && p.isName("and") {
		p.i++
		var r expr
		if r, err = p.parseNot(); err == nil {
			l = binExpr{"and", l, r}
		}
	}
	return l, err
}

func (p *parser) parseNot() (expr, error) {
	if p.isName("not") {
		p.i++
		x, err := p.parseNot()
		return unaryExpr{"not", x}, err
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	l, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	for {
		var op string
		switch t := p.peek(); {
		case t.kind == tokOp && (t.s == "==" || t.s == "!=" || t.s == "<" || t.s == ">" || t.s == "<=" || t.s == ">="):
			op = t.s
			p.i++
		case p.isName("in"):
			op = "in"
			p.i++
		case p.isName("not") && p.toks[p.i+1].kind == tokName && p.toks[p.i+1].s == "in":
			op = "not in"
			p.i += 2
		default:
			return l, nil
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		l = binExpr{op, l, r}
	}
}

func (p *parser) parseMath1() (expr, error) {
	l, err := p.parseConcat()
	for err == nil && (p.isOp("+") || p.isOp("-")) {
		op := p.next().s
		var r expr
		if r, err = p.parseConcat(); err == nil {
			l = binExpr{op, l, r}
		}
	}
	return l, err
}

func (p *parser) parseConcat() (expr, error) {
	l, err := p.parseMath2()
	for err == nil && p.isOp("~") {
		p.i++
		var r expr
		if r, err = p.parseMath2(); err == nil {
			l = binExpr{"~", l, r}
		}
	}
	return l, err
}

func (p *parser) parseMath2() (expr, error) {
	l, err := p.parsePow()
	for err == nil && (p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%")) {
		op := p.next().s
		var r expr
		if r, err = p.parsePow(); err == nil {
			l = binExpr{op, l, r}
		}
	}
	return l, err
}

func (p *parser) parsePow() (expr, error) {
	l, err := p.parseUnary()
	for err == nil && p.isOp("**") {
		p.i++
		var r expr
		if r, err = p.parseUnary(); err == nil {
			l = binExpr{"**", l, r}
		}
	}
	return l, err
}

func (p *parser) parseUnary() (expr, error) {
	if p.isOp("-") || p.isOp("+") {
		op := p.next().s
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return unaryExpr{op, x}, nil
	}
	x, err := p.parsePostfix()
	if err != nil {
		return nil, err
	}
	return p.parseFiltersAndTests(x)
}

func (p *parser) parseFiltersAndTests(x expr) (expr, error) {
	for p.isOp("|") {
		p.i++
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		f := filterExpr{x: x, name: name}
		if p.isOp("(") {
			p.i++
			if f.args, f.kwargs, err = p.parseArgs(); err != nil {
				return nil, err
			}
		}
		x = f
	}
	if p.isName("is") {
		p.i++
		t := testExpr{x: x}
		if p.isName("not") {
			p.i++
			t.neg = true
		}
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		t.name = name
		if p.isOp("(") {
			p.i++
			if t.args, _, err = p.parseArgs(); err != nil {
				return nil, err
			}
		} else if k := p.peek().kind; k == tokString || k == tokInt || k == tokFloat || (k == tokName && !isKeyword(p.peek().s)) {
			// `x is divisibleby 3`, `x is sameas none`: one bare argument.
			a, err := p.parsePostfix()
			if err != nil {
				return nil, err
			}
			t.args = []expr{a}
		}
		x = t
	}
	return x, nil
}

func isKeyword(s string) bool {
	switch s {
	case "and", "or", "not", "in", "is", "if", "else":
		return true
	}
	return false
}

// parseArgs parses call arguments after "(" up to and including ")".
func (p *parser) parseArgs() ([]expr, []kwarg, error) {
	var args []expr
	var kws []kwarg
	for !p.isOp(")") {
		if t := p.peek(); t.kind == tokName && p.toks[p.i+1].kind == tokOp && p.toks[p.i+1].s == "=" {
			p.i += 2
			x, err := p.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			kws = append(kws, kwarg{t.s, x})
		} else {
			x, err := p.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			args = append(args, x)
		}
		if !p.isOp(",") {
			break
		}
		p.i++
	}
	return args, kws, p.expectOp(")")
}

func (p *parser) parsePostfix() (expr, error) {
	x, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.i++
			t := p.next()
			switch t.kind {
			case tokName:
				x = attrExpr{x, t.s}
			case tokInt:
				x = indexExpr{x, litExpr{t.n}}
			default:
				return nil, fmt.Errorf("expected an attribute name after '.'")
			}
		case p.isOp("["):
			p.i++
			x, err = p.parseSubscript(x)
			if err != nil {
				return nil, err
			}
		case p.isOp("("):
			p.i++
			args, kws, err := p.parseArgs()
			if err != nil {
				return nil, err
			}
			x = callExpr{x, args, kws}
		default:
			return x, nil
		}
	}
}

func (p *parser) parseSubscript(x expr) (expr, error) {
	var parts [3]expr
	n := 0
	for {
		if !p.isOp(":") && !p.isOp("]") {
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			parts[n] = e
		}
		if p.isOp("]") {
			p.i++
			break
		}
		if err := p.expectOp(":"); err != nil {
			return nil, err
		}
		n++
		if n > 2 {
			return nil, fmt.Errorf("too many ':' in subscript")
		}
	}
	if n == 0 {
		if parts[0] == nil {
			return nil, fmt.Errorf("empty subscript")
		}
		return indexExpr{x, parts[0]}, nil
	}
	return sliceExpr{x, parts[0], parts[1], parts[2]}, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		s := t.s
		for p.peek().kind == tokString { // adjacent literals concatenate
			s += p.next().s
		}
		return litExpr{s}, nil
	case tokInt:
		return litExpr{t.n}, nil
	case tokFloat:
		return litExpr{t.f}, nil
	case tokName:
		switch t.s {
		case "true", "True":
			return litExpr{true}, nil
		case "false", "False":
			return litExpr{false}, nil
		case "none", "None":
			return litExpr{nil}, nil
		}
		return nameExpr{t.s}, nil
	case tokOp:
		switch t.s {
		case "(":
			if p.isOp(")") {
				p.i++
				return listExpr{}, nil
			}
			x, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if p.isOp(",") { // a tuple: treated as a list
				items := []expr{x}
				for p.isOp(",") {
					p.i++
					if p.isOp(")") {
						break
					}
					y, err := p.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, y)
				}
				x = listExpr{items}
			}
			return x, p.expectOp(")")
		case "[":
			var l listExpr
			for !p.isOp("]") {
				x, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, x)
				if !p.isOp(",") {
					break
				}
				p.i++
			}
			return l, p.expectOp("]")
		case "{":
			var d dictExpr
			for !p.isOp("}") {
				k, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys, d.vals = append(d.keys, k), append(d.vals, v)
				if !p.isOp(",") {
					break
				}
				p.i++
			}
			return d, p.expectOp("}")
		}
	}
	p.i--
	return nil, fmt.Errorf("unexpected %s", p.describe())
}
