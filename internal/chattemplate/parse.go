package chattemplate

import (
	"fmt"
	"strings"
)

// Statement nodes.
type node interface{}

type (
	textNode   struct{ s string }
	outputNode struct {
		x   expr
		pos int
	}
	ifNode struct {
		conds  []expr
		bodies [][]node
		els    []node
	}
	forNode struct {
		vars []string
		iter expr
		cond expr // optional `if` filter
		body []node
		els  []node
		pos  int
	}
	setNode struct {
		names []string // one name, or several to unpack
		attr  string   // set ns.attr = ...
		x     expr
		body  []node // block set: {% set x %}...{% endset %}
	}
	macroNode struct {
		name     string
		params   []string
		defaults []expr
		body     []node
	}
	breakNode    struct{}
	continueNode struct{}
)

// Template is a parsed chat template. It is safe for concurrent use.
type Template struct {
	body []node
}

// Parse parses a Jinja2 template in the dialect Hugging Face transformers
// uses for chat templates (trim_blocks and lstrip_blocks on).
func Parse(src string) (*Template, error) {
	ps, err := splitTemplate(src)
	if err != nil {
		return nil, fmt.Errorf("chattemplate: %w", err)
	}
	b := &builder{ps: ps}
	body, end, err := b.parseBody()
	if err != nil {
		return nil, fmt.Errorf("chattemplate: %w", err)
	}
	if end != "" {
		return nil, fmt.Errorf("chattemplate: unexpected {%% %s %%}", end)
	}
	return &Template{body: body}, nil
}

// builder turns the pieces of a template into a tree of nodes.
type builder struct {
	ps []piece
	i  int
}

// parseBody parses nodes until a block tag whose keyword is not a
// statement opener (endfor, else, ...), which it returns with the parser
// positioned on that tag's tokens.
func (b *builder) parseBody() ([]node, string, error) {
	var out []node
	for b.i < len(b.ps) {
		p := b.ps[b.i]
		b.i++
		switch p.kind {
		case tagText:
			if p.src != "" {
				out = append(out, textNode{p.src})
			}
		case tagComment:
		case tagVar:
			x, err := parseWhole(p.src)
			if err != nil {
				return nil, "", fmt.Errorf("offset %d: {{%s}}: %w", p.pos, p.src, err)
			}
			out = append(out, outputNode{x, p.pos})
		case tagBlock:
			toks, err := lexExpr(p.src)
			if err != nil {
				return nil, "", fmt.Errorf("offset %d: %w", p.pos, err)
			}
			if toks[0].kind != tokName {
				return nil, "", fmt.Errorf("offset %d: {%%%s%%}: expected a statement", p.pos, p.src)
			}
			pr := &parser{toks: toks, i: 1}
			n, err := b.parseStatement(toks[0].s, pr, p)
			if err != nil {
				if _, ok := err.(endTag); ok {
					b.i-- // leave the closing tag for the caller
					return out, toks[0].s, nil
				}
				return nil, "", fmt.Errorf("offset %d: {%%%s%%}: %w", p.pos, p.src, err)
			}
			if n != nil {
				out = append(out, n)
			}
		}
	}
	return out, "", nil
}

// endTag signals a block tag that closes or continues an enclosing block.
type endTag struct{}

func (endTag) Error() string { return "end tag" }

func parseWhole(src string) (expr, error) {
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	x, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokEOF {
		return nil, fmt.Errorf("unexpected %s", p.describe())
	}
	return x, nil
}

// closing consumes the current tag (which parseBody left in place), parses
// its tokens and returns its keyword and parser.
func (b *builder) closing() (string, *parser, piece) {
	p := b.ps[b.i]
	b.i++
	toks, _ := lexExpr(p.src) // lexed before without error
	return toks[0].s, &parser{toks: toks, i: 1}, p
}

func (b *builder) parseStatement(kw string, pr *parser, p piece) (node, error) {
	end := func() error {
		if pr.peek().kind != tokEOF {
			return fmt.Errorf("unexpected %s", pr.describe())
		}
		return nil
	}
	switch kw {
	case "if":
		n := ifNode{}
		cond, err := pr.parseExpr()
		if err != nil {
			return nil, err
		}
		if err := end(); err != nil {
			return nil, err
		}
		for {
			body, stop, err := b.parseBody()
			if err != nil {
				return nil, err
			}
			if stop == "" {
				return nil, fmt.Errorf("missing {%% endif %%}")
			}
			n.conds, n.bodies = append(n.conds, cond), append(n.bodies, body)
			kw2, pr2, _ := b.closing()
			switch kw2 {
			case "elif":
				if cond, err = pr2.parseExpr(); err != nil {
					return nil, err
				}
				continue
			case "else":
				els, stop, err := b.parseBody()
				if err != nil {
					return nil, err
				}
				if stop != "endif" {
					return nil, fmt.Errorf("missing {%% endif %%}")
				}
				b.closing()
				n.els = els
				return n, nil
			case "endif":
				return n, nil
			}
			return nil, fmt.Errorf("unexpected {%% %s %%} in if", kw2)
		}
	case "for":
		n := forNode{pos: p.pos}
		for {
			name, err := pr.name()
			if err != nil {
				return nil, err
			}
			n.vars = append(n.vars, name)
			if !pr.isOp(",") {
				break
			}
			pr.i++
		}
		if !pr.isName("in") {
			return nil, fmt.Errorf("expected 'in'")
		}
		pr.i++
		iter, err := pr.parseOr()
		if err != nil {
			return nil, err
		}
		n.iter = iter
		if pr.isName("if") {
			pr.i++
			if n.cond, err = pr.parseOr(); err != nil {
				return nil, err
			}
		}
		if pr.isName("recursive") {
			return nil, fmt.Errorf("recursive loops are not supported")
		}
		if err := end(); err != nil {
			return nil, err
		}
		body, stop, err := b.parseBody()
		if err != nil {
			return nil, err
		}
		n.body = body
		if stop == "else" {
			b.closing()
			if n.els, stop, err = b.parseBody(); err != nil {
				return nil, err
			}
		}
		if stop != "endfor" {
			return nil, fmt.Errorf("missing {%% endfor %%}")
		}
		b.closing()
		return n, nil
	case "set":
		n := setNode{}
		name, err := pr.name()
		if err != nil {
			return nil, err
		}
		n.names = []string{name}
		if pr.isOp(".") {
			pr.i++
			if n.attr, err = pr.name(); err != nil {
				return nil, err
			}
		}
		for pr.isOp(",") {
			pr.i++
			name, err := pr.name()
			if err != nil {
				return nil, err
			}
			n.names = append(n.names, name)
		}
		if pr.peek().kind == tokEOF { // block set
			body, stop, err := b.parseBody()
			if err != nil {
				return nil, err
			}
			if stop != "endset" {
				return nil, fmt.Errorf("missing {%% endset %%}")
			}
			b.closing()
			n.body = body
			return n, nil
		}
		if err := pr.expectOp("="); err != nil {
			return nil, err
		}
		if n.x, err = pr.parseExpr(); err != nil {
			return nil, err
		}
		if pr.isOp(",") { // set a = 1, 2
			items := []expr{n.x}
			for pr.isOp(",") {
				pr.i++
				y, err := pr.parseExpr()
				if err != nil {
					return nil, err
				}
				items = append(items, y)
			}
			n.x = listExpr{items}
		}
		return n, end()
	case "macro":
		n := macroNode{}
		var err error
		if n.name, err = pr.name(); err != nil {
			return nil, err
		}
		if err := pr.expectOp("("); err != nil {
			return nil, err
		}
		for !pr.isOp(")") {
			name, err := pr.name()
			if err != nil {
				return nil, err
			}
			var def expr
			if pr.isOp("=") {
				pr.i++
				if def, err = pr.parseExpr(); err != nil {
					return nil, err
				}
			}
			n.params, n.defaults = append(n.params, name), append(n.defaults, def)
			if !pr.isOp(",") {
				break
			}
			pr.i++
		}
		if err := pr.expectOp(")"); err != nil {
			return nil, err
		}
		body, stop, err := b.parseBody()
		if err != nil {
			return nil, err
		}
		if stop != "endmacro" {
			return nil, fmt.Errorf("missing {%% endmacro %%}")
		}
		b.closing()
		n.body = body
		return n, nil
	case "generation":
		// transformers' marker for assistant-token masks: render the body.
		body, stop, err := b.parseBody()
		if err != nil {
			return nil, err
		}
		if stop != "endgeneration" {
			return nil, fmt.Errorf("missing {%% endgeneration %%}")
		}
		b.closing()
		return ifNode{conds: []expr{litExpr{true}}, bodies: [][]node{body}}, nil
	case "break":
		return breakNode{}, end()
	case "continue":
		return continueNode{}, end()
	case "elif", "else", "endif", "endfor", "endset", "endmacro", "endgeneration":
		return nil, endTag{}
	}
	if strings.HasPrefix(kw, "end") {
		return nil, endTag{}
	}
	return nil, fmt.Errorf("unsupported statement %q", kw)
}
