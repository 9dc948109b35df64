package chattemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

func eval(x expr, sc *scope) (value, error) {
	switch x := x.(type) {
	case litExpr:
		return x.v, nil
	case nameExpr:
		if v, ok := sc.lookup(x.name); ok {
			return v, nil
		}
		return undefined{}, nil
	case listExpr:
		l := make([]value, len(x.items))
		for i, e := range x.items {
			v, err := eval(e, sc)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case dictExpr:
		d := newDict()
		for i := range x.keys {
			k, err := eval(x.keys[i], sc)
			if err != nil {
				return nil, err
			}
			v, err := eval(x.vals[i], sc)
			if err != nil {
				return nil, err
			}
			d.set(toStr(k), v)
		}
		return d, nil
	case attrExpr:
		obj, err := eval(x.x, sc)
		if err != nil {
			return nil, err
		}
		return getAttr(obj, x.name), nil
	case indexExpr:
		obj, err := eval(x.x, sc)
		if err != nil {
			return nil, err
		}
		i, err := eval(x.i, sc)
		if err != nil {
			return nil, err
		}
		return getItem(obj, i)
	case sliceExpr:
		return evalSlice(x, sc)
	case callExpr:
		return evalCall(x, sc)
	case filterExpr:
		v, err := eval(x.x, sc)
		if err != nil {
			return nil, err
		}
		args, kw, err := evalArgs(x.args, x.kwargs, sc)
		if err != nil {
			return nil, err
		}
		r, err := applyFilter(x.name, v, args, kw, sc)
		if err != nil {
			return nil, fmt.Errorf("filter %s: %w", x.name, err)
		}
		return r, nil
	case testExpr:
		v, err := eval(x.x, sc)
		if err != nil {
			return nil, err
		}
		args, _, err := evalArgs(x.args, nil, sc)
		if err != nil {
			return nil, err
		}
		ok, err := applyTest(x.name, v, args)
		if err != nil {
			return nil, err
		}
		return ok != x.neg, nil
	case unaryExpr:
		v, err := eval(x.x, sc)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "not":
			return !truthy(v), nil
		case "-":
			switch n := v.(type) {
			case int64:
				return -n, nil
			case float64:
				return -n, nil
			}
			return nil, fmt.Errorf("bad operand for unary -: %s", typeName(v))
		}
		return v, nil
	case condExpr:
		c, err := eval(x.cond, sc)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return eval(x.yes, sc)
		}
		return eval(x.no, sc)
	case binExpr:
		l, err := eval(x.l, sc)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "and":
			if !truthy(l) {
				return l, nil
			}
			return eval(x.r, sc)
		case "or":
			if truthy(l) {
				return l, nil
			}
			return eval(x.r, sc)
		}
		r, err := eval(x.r, sc)
		if err != nil {
			return nil, err
		}
		return binary(x.op, l, r)
	}
	return nil, fmt.Errorf("unknown expression %T", x)
}

func evalArgs(xs []expr, kws []kwarg, sc *scope) ([]value, map[string]value, error) {
	args := make([]value, len(xs))
	for i, a := range xs {
		v, err := eval(a, sc)
		if err != nil {
			return nil, nil, err
		}
		args[i] = v
	}
	var kw map[string]value
	if len(kws) > 0 {
		kw = map[string]value{}
		for _, k := range kws {
			v, err := eval(k.x, sc)
			if err != nil {
				return nil, nil, err
			}
			kw[k.name] = v
		}
	}
	return args, kw, nil
}

func getAttr(obj value, name string) value {
	if d, ok := obj.(*dict); ok {
		if v, ok := d.m[name]; ok {
			return v
		}
	}
	if m := method(obj, name); m != nil {
		return m
	}
	return undefined{}
}

func getItem(obj, key value) (value, error) {
	switch o := obj.(type) {
	case *dict:
		if v, ok := o.m[toStr(key)]; ok {
			return v, nil
		}
		return undefined{}, nil
	case []value:
		i, ok := key.(int64)
		if !ok {
			return undefined{}, nil
		}
		if i < 0 {
			i += int64(len(o))
		}
		if i < 0 || i >= int64(len(o)) {
			return undefined{}, nil
		}
		return o[i], nil
	case string:
		i, ok := key.(int64)
		if !ok {
			return undefined{}, nil
		}
		rs := []rune(o)
		if i < 0 {
			i += int64(len(rs))
		}
		if i < 0 || i >= int64(len(rs)) {
			return undefined{}, nil
		}
		return string(rs[i]), nil
	case undefined:
		return undefined{}, nil
	}
	if s, ok := key.(string); ok {
		return getAttr(obj, s), nil
	}
	return undefined{}, nil
}

func evalSlice(x sliceExpr, sc *scope) (value, error) {
	obj, err := eval(x.x, sc)
	if err != nil {
		return nil, err
	}
	bound := func(e expr) (*int64, error) {
		if e == nil {
			return nil, nil
		}
		v, err := eval(e, sc)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, nil
		}
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("slice index must be an integer, not %s", typeName(v))
		}
		return &n, nil
	}
	lo, err := bound(x.lo)
	if err != nil {
		return nil, err
	}
	hi, err := bound(x.hi)
	if err != nil {
		return nil, err
	}
	st, err := bound(x.step)
	if err != nil {
		return nil, err
	}
	var items []value
	isStr := false
	switch o := obj.(type) {
	case []value:
		items = o
	case string:
		isStr = true
		for _, r := range o {
			items = append(items, string(r))
		}
	default:
		return nil, fmt.Errorf("cannot slice %s", typeName(obj))
	}
	idx := pySlice(len(items), lo, hi, st)
	if idx == nil && st != nil && *st == 0 {
		return nil, fmt.Errorf("slice step cannot be zero")
	}
	out := make([]value, len(idx))
	for i, k := range idx {
		out[i] = items[k]
	}
	if isStr {
		var b strings.Builder
		for _, v := range out {
			b.WriteString(v.(string))
		}
		return b.String(), nil
	}
	return out, nil
}

// pySlice returns the indices Python's s[lo:hi:step] selects.
func pySlice(n int, lo, hi, st *int64) []int {
	step := int64(1)
	if st != nil {
		step = *st
	}
	if step == 0 {
		return nil
	}
	N := int64(n)
	clamp := func(p *int64, def int64, lowLim, highLim int64) int64 {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += N
			if v < lowLim {
				v = lowLim
			}
		} else if v > highLim {
			v = highLim
		}
		return v
	}
	var out []int
	if step > 0 {
		a, b := clamp(lo, 0, 0, N), clamp(hi, N, 0, N)
		for i := a; i < b; i += step {
			out = append(out, int(i))
		}
	} else {
		a, b := clamp(lo, N-1, -1, N-1), clamp(hi, -1, -1, N-1)
		if hi != nil && *hi < 0 && *hi+N < 0 {
			b = -1
		}
		for i := a; i > b; i += step {
			out = append(out, int(i))
		}
	}
	if out == nil {
		out = []int{}
	}
	return out
}

func evalCall(x callExpr, sc *scope) (value, error) {
	fn, err := eval(x.fn, sc)
	if err != nil {
		return nil, err
	}
	args, kw, err := evalArgs(x.args, x.kwargs, sc)
	if err != nil {
		return nil, err
	}
	switch f := fn.(type) {
	case builtin:
		return f(args, kw)
	case *macro:
		s := &scope{vars: map[string]value{}, parent: f.env}
		for i, p := range f.n.params {
			switch {
			case i < len(args):
				s.vars[p] = args[i]
			case kw != nil && kw[p] != nil:
				s.vars[p] = kw[p]
			case f.n.defaults[i] != nil:
				v, err := eval(f.n.defaults[i], f.env)
				if err != nil {
					return nil, err
				}
				s.vars[p] = v
			default:
				s.vars[p] = undefined{}
			}
		}
		r := &renderer{}
		if _, err := r.exec(f.n.body, s); err != nil {
			return nil, err
		}
		return r.out.String(), nil
	}
	name := "expression"
	if a, ok := x.fn.(attrExpr); ok {
		name = a.name
	} else if n, ok := x.fn.(nameExpr); ok {
		name = n.name
	}
	return nil, fmt.Errorf("%s is not callable (%s)", name, typeName(fn))
}

func binary(op string, l, r value) (value, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "~":
		return toStr(l) + toStr(r), nil
	case "in", "not in":
		in, err := contains(r, l)
		if err != nil {
			return nil, err
		}
		return in == (op == "in"), nil
	case "+":
		switch a := l.(type) {
		case string:
			if b, ok := r.(string); ok {
				return a + b, nil
			}
		case []value:
			if b, ok := r.([]value); ok {
				return append(append([]value{}, a...), b...), nil
			}
		}
	case "<", ">", "<=", ">=":
		if a, ok := l.(string); ok {
			if b, ok := r.(string); ok {
				c := strings.Compare(a, b)
				return cmpResult(op, c), nil
			}
		}
	}
	a, aok := num(l)
	b, bok := num(r)
	if !aok || !bok {
		return nil, fmt.Errorf("unsupported operands for %s: %s and %s", op, typeName(l), typeName(r))
	}
	ai, aInt := l.(int64)
	bi, bInt := r.(int64)
	if _, ok := l.(bool); ok {
		ai, aInt = int64(a), true
	}
	if _, ok := r.(bool); ok {
		bi, bInt = int64(b), true
	}
	ints := aInt && bInt
	switch op {
	case "+":
		if ints {
			return ai + bi, nil
		}
		return a + b, nil
	case "-":
		if ints {
			return ai - bi, nil
		}
		return a - b, nil
	case "*":
		if ints {
			return ai * bi, nil
		}
		return a * b, nil
	case "/":
		if b == 0 {
			return nil, fmt.Errorf("division by zero")
		}
		return a / b, nil
	case "//":
		if b == 0 {
			return nil, fmt.Errorf("division by zero")
		}
		if ints {
			q := ai / bi
			if (ai%bi != 0) && ((ai < 0) != (bi < 0)) {
				q--
			}
			return q, nil
		}
		return math.Floor(a / b), nil
	case "%":
		if b == 0 {
			return nil, fmt.Errorf("division by zero")
		}
		if ints {
			m := ai % bi
			if m != 0 && (m < 0) != (bi < 0) {
				m += bi
			}
			return m, nil
		}
		return a - b*math.Floor(a/b), nil
	case "**":
		if ints && bi >= 0 {
			return int64(math.Pow(a, b)), nil
		}
		return math.Pow(a, b), nil
	case "<", ">", "<=", ">=":
		c := 0
		if a < b {
			c = -1
		} else if a > b {
			c = 1
		}
		return cmpResult(op, c), nil
	}
	return nil, fmt.Errorf("unknown operator %s", op)
}

func cmpResult(op string, c int) bool {
	switch op {
	case "<":
		return c < 0
	case ">":
		return c > 0
	case "<=":
		return c <= 0
	}
	return c >= 0
}

func num(v value) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func equal(a, b value) bool {
	if x, ok := num(a); ok {
		if y, ok := num(b); ok {
			return x == y
		}
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case undefined:
		_, ok := b.(undefined)
		return ok
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []value:
		y, ok := b.([]value)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case *dict:
		y, ok := b.(*dict)
		if !ok || len(x.keys) != len(y.keys) {
			return false
		}
		for k, v := range x.m {
			w, ok := y.m[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func contains(container, item value) (bool, error) {
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires a string, not %s", typeName(item))
		}
		return strings.Contains(c, s), nil
	case []value:
		for _, e := range c {
			if equal(e, item) {
				return true, nil
			}
		}
		return false, nil
	case *dict:
		_, ok := c.m[toStr(item)]
		return ok, nil
	case undefined, nil:
		return false, nil
	}
	return false, fmt.Errorf("%s is not a container", typeName(container))
}

// method returns the bound Python method name of obj, or nil.
func method(obj value, name string) value {
	switch o := obj.(type) {
	case string:
		return stringMethod(o, name)
	case *dict:
		switch name {
		case "items":
			return builtin(func([]value, map[string]value) (value, error) { return dictItems(o), nil })
		case "keys":
			return builtin(func([]value, map[string]value) (value, error) {
				l := make([]value, len(o.keys))
				for i, k := range o.keys {
					l[i] = k
				}
				return l, nil
			})
		case "values":
			return builtin(func([]value, map[string]value) (value, error) {
				l := make([]value, len(o.keys))
				for i, k := range o.keys {
					l[i] = o.m[k]
				}
				return l, nil
			})
		case "get":
			return builtin(func(args []value, _ map[string]value) (value, error) {
				if len(args) == 0 {
					return nil, fmt.Errorf("get needs a key")
				}
				if v, ok := o.m[toStr(args[0])]; ok {
					return v, nil
				}
				if len(args) > 1 {
					return args[1], nil
				}
				return nil, nil
			})
		}
	}
	return nil
}

func dictItems(d *dict) []value {
	l := make([]value, len(d.keys))
	for i, k := range d.keys {
		l[i] = []value{k, d.m[k]}
	}
	return l
}

func strArg(args []value, i int) (string, bool) {
	if i >= len(args) || args[i] == nil {
		return "", false
	}
	s, ok := args[i].(string)
	return s, ok
}

func stringMethod(s, name string) value {
	strip := func(f func(string, string) string, g func(string, func(rune) bool) string) builtin {
		return func(args []value, _ map[string]value) (value, error) {
			if chars, ok := strArg(args, 0); ok {
				return f(s, chars), nil
			}
			return g(s, unicode.IsSpace), nil
		}
	}
	switch name {
	case "strip":
		return strip(strings.Trim, strings.TrimFunc)
	case "lstrip":
		return strip(strings.TrimLeft, strings.TrimLeftFunc)
	case "rstrip":
		return strip(strings.TrimRight, strings.TrimRightFunc)
	case "upper":
		return builtin(func([]value, map[string]value) (value, error) { return strings.ToUpper(s), nil })
	case "lower":
		return builtin(func([]value, map[string]value) (value, error) { return strings.ToLower(s), nil })
	case "title":
		return builtin(func([]value, map[string]value) (value, error) { return title(s), nil })
	case "capitalize":
		return builtin(func([]value, map[string]value) (value, error) { return capitalize(s), nil })
	case "startswith", "endswith":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			var cands []value
			switch a := args[0].(type) {
			case string:
				cands = []value{a}
			case []value:
				cands = a
			}
			for _, c := range cands {
				p, _ := c.(string)
				if name == "startswith" && strings.HasPrefix(s, p) || name == "endswith" && strings.HasSuffix(s, p) {
					return true, nil
				}
			}
			return false, nil
		})
	case "split":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			var parts []string
			if sep, ok := strArg(args, 0); ok {
				if sep == "" {
					return nil, fmt.Errorf("empty separator")
				}
				parts = strings.Split(s, sep)
				if n, ok := argInt(args, 1); ok && n >= 0 {
					parts = strings.SplitN(s, sep, int(n)+1)
				}
			} else {
				parts = strings.Fields(s)
			}
			l := make([]value, len(parts))
			for i, p := range parts {
				l[i] = p
			}
			return l, nil
		})
	case "replace":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			a, ok1 := strArg(args, 0)
			b, ok2 := strArg(args, 1)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("replace needs two strings")
			}
			n := -1
			if c, ok := argInt(args, 2); ok {
				n = int(c)
			}
			return strings.Replace(s, a, b, n), nil
		})
	case "find":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			a, _ := strArg(args, 0)
			i := strings.Index(s, a)
			if i < 0 {
				return int64(-1), nil
			}
			return int64(utf8.RuneCountInString(s[:i])), nil
		})
	case "count":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			a, _ := strArg(args, 0)
			return int64(strings.Count(s, a)), nil
		})
	case "join":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("join needs a list")
			}
			items, err := iterate(args[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				parts[i] = toStr(it)
			}
			return strings.Join(parts, s), nil
		})
	case "isdigit", "isalpha", "isspace", "isupper", "islower":
		return builtin(func([]value, map[string]value) (value, error) {
			if s == "" {
				return false, nil
			}
			f := map[string]func(rune) bool{"isdigit": unicode.IsDigit, "isalpha": unicode.IsLetter, "isspace": unicode.IsSpace, "isupper": unicode.IsUpper, "islower": unicode.IsLower}[name]
			for _, r := range s {
				if !f(r) {
					return false, nil
				}
			}
			return true, nil
		})
	case "format":
		return builtin(func(args []value, _ map[string]value) (value, error) {
			out := s
			for _, a := range args {
				out = strings.Replace(out, "{}", toStr(a), 1)
			}
			return out, nil
		})
	}
	return nil
}

func argInt(args []value, i int) (int64, bool) {
	if i >= len(args) {
		return 0, false
	}
	n, ok := args[i].(int64)
	return n, ok
}

func title(s string) string {
	prev := false
	return strings.Map(func(r rune) rune {
		isL := unicode.IsLetter(r)
		defer func() { prev = isL }()
		if isL && !prev {
			return unicode.ToTitle(r)
		}
		if isL {
			return unicode.ToLower(r)
		}
		return r
	}, s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, w := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + strings.ToLower(s[w:])
}

func length(v value) (int64, error) {
	switch x := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case []value:
		return int64(len(x)), nil
	case *dict:
		return int64(len(x.keys)), nil
	case undefined:
		return 0, nil
	}
	return 0, fmt.Errorf("%s has no length", typeName(v))
}

func applyFilter(name string, v value, args []value, kw map[string]value, sc *scope) (value, error) {
	switch name {
	case "trim", "strip":
		if s, ok := v.(string); ok {
			if chars, ok := strArg(args, 0); ok {
				return strings.Trim(s, chars), nil
			}
			return strings.TrimSpace(s), nil
		}
		return toStr(v), nil
	case "length", "count":
		return length(v)
	case "upper":
		return strings.ToUpper(toStr(v)), nil
	case "lower":
		return strings.ToLower(toStr(v)), nil
	case "title":
		return title(toStr(v)), nil
	case "capitalize":
		return capitalize(toStr(v)), nil
	case "string":
		return toStr(v), nil
	case "safe", "e", "escape":
		if name == "safe" {
			return v, nil
		}
		r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&#34;", "'", "&#39;")
		return r.Replace(toStr(v)), nil
	case "int":
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			return int64(x), nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case string:
			var n int64
			if _, err := fmt.Sscan(strings.TrimSpace(x), &n); err == nil {
				return n, nil
			}
		}
		return int64(0), nil
	case "float":
		if f, ok := num(v); ok {
			return f, nil
		}
		return 0.0, nil
	case "abs":
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return -x, nil
			}
			return x, nil
		case float64:
			return math.Abs(x), nil
		}
		return nil, fmt.Errorf("abs of %s", typeName(v))
	case "default", "d":
		useFalsy := false
		if b, ok := argBool(args, 1, kw, "boolean"); ok {
			useFalsy = b
		}
		if _, undef := v.(undefined); undef || (useFalsy && !truthy(v)) {
			if len(args) > 0 {
				return args[0], nil
			}
			return "", nil
		}
		return v, nil
	case "first", "last":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return undefined{}, nil
		}
		if name == "first" {
			return items[0], nil
		}
		return items[len(items)-1], nil
	case "list":
		return iterate(v)
	case "reverse":
		if s, ok := v.(string); ok {
			rs := []rune(s)
			for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
				rs[i], rs[j] = rs[j], rs[i]
			}
			return string(rs), nil
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		out := make([]value, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return out, nil
	case "join":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		sep, _ := strArg(args, 0)
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = toStr(it)
		}
		return strings.Join(parts, sep), nil
	case "items":
		d, ok := v.(*dict)
		if !ok {
			if _, undef := v.(undefined); undef {
				return []value{}, nil
			}
			return nil, fmt.Errorf("items of %s", typeName(v))
		}
		return dictItems(d), nil
	case "tojson":
		indent := -1
		if n, ok := argInt(args, 0); ok {
			indent = int(n)
		}
		if n, ok := kw["indent"].(int64); ok {
			indent = int(n)
		}
		return toJSON(v, indent)
	case "replace":
		a, _ := strArg(args, 0)
		b, _ := strArg(args, 1)
		return strings.ReplaceAll(toStr(v), a, b), nil
	case "selectattr", "rejectattr":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		attr, ok := strArg(args, 0)
		if !ok {
			return nil, fmt.Errorf("needs an attribute name")
		}
		var out []value
		for _, it := range items {
			a := getAttr(it, attr)
			var keep bool
			if len(args) > 1 {
				tn, _ := strArg(args, 1)
				if keep, err = applyTest(tn, a, args[2:]); err != nil {
					return nil, err
				}
			} else {
				keep = truthy(a)
			}
			if keep == (name == "selectattr") {
				out = append(out, it)
			}
		}
		return out, nil
	case "map":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		out := make([]value, len(items))
		if attr, ok := kw["attribute"].(string); ok {
			for i, it := range items {
				out[i] = getAttr(it, attr)
			}
			return out, nil
		}
		fname, ok := strArg(args, 0)
		if !ok {
			return nil, fmt.Errorf("map needs attribute= or a filter name")
		}
		for i, it := range items {
			if out[i], err = applyFilter(fname, it, args[1:], nil, sc); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown filter")
}

func argBool(args []value, i int, kw map[string]value, name string) (bool, bool) {
	if i < len(args) {
		b, ok := args[i].(bool)
		return b, ok
	}
	b, ok := kw[name].(bool)
	return b, ok
}

func applyTest(name string, v value, args []value) (bool, error) {
	switch name {
	case "defined":
		_, u := v.(undefined)
		return !u, nil
	case "undefined":
		_, u := v.(undefined)
		return u, nil
	case "none":
		return v == nil, nil
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "number":
		switch v.(type) {
		case int64, float64:
			return true, nil
		}
		return false, nil
	case "integer":
		_, ok := v.(int64)
		return ok, nil
	case "float":
		_, ok := v.(float64)
		return ok, nil
	case "boolean":
		_, ok := v.(bool)
		return ok, nil
	case "true":
		return v == true, nil
	case "false":
		return v == false, nil
	case "mapping":
		_, ok := v.(*dict)
		return ok, nil
	case "sequence", "iterable":
		switch v.(type) {
		case []value, string, *dict:
			return true, nil
		}
		return false, nil
	case "callable":
		switch v.(type) {
		case builtin, *macro:
			return true, nil
		}
		return false, nil
	case "odd", "even":
		n, ok := v.(int64)
		if !ok {
			return false, fmt.Errorf("test %s: %s is not an integer", name, typeName(v))
		}
		return (n%2 != 0) == (name == "odd"), nil
	case "divisibleby":
		n, ok1 := v.(int64)
		d, ok2 := argInt(args, 0)
		if !ok1 || !ok2 || d == 0 {
			return false, fmt.Errorf("test divisibleby needs integers")
		}
		return n%d == 0, nil
	case "equalto", "eq", "==", "sameas":
		if len(args) == 0 {
			return false, fmt.Errorf("test %s needs an argument", name)
		}
		return equal(v, args[0]), nil
	case "ne", "!=":
		if len(args) == 0 {
			return false, fmt.Errorf("test %s needs an argument", name)
		}
		return !equal(v, args[0]), nil
	case "in":
		if len(args) == 0 {
			return false, fmt.Errorf("test in needs an argument")
		}
		return contains(args[0], v)
	case "lower", "upper":
		s, ok := v.(string)
		if !ok {
			return false, nil
		}
		if name == "lower" {
			return s == strings.ToLower(s), nil
		}
		return s == strings.ToUpper(s), nil
	}
	return false, fmt.Errorf("unknown test %q", name)
}

// toJSON serializes v as transformers' tojson does (json.dumps with
// ensure_ascii=False, key order kept, ", " and ": " separators).
func toJSON(v value, indent int) (string, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v, indent, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *bytes.Buffer, v value, indent, depth int) error {
	if depth > 100 {
		return fmt.Errorf("tojson: nesting too deep")
	}
	nl := func(d int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	sep := ", "
	if indent >= 0 {
		sep = ","
	}
	switch x := v.(type) {
	case nil, undefined:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64, float64:
		if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			b.WriteString("NaN")
			return nil
		}
		b.WriteString(repr(x, false))
	case string:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	case []value:
		if len(x) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(depth + 1)
			if err := writeJSON(b, e, indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte(']')
	case *dict:
		if len(x.keys) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(depth + 1)
			if err := writeJSON(b, k, indent, depth+1); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := writeJSON(b, x.m[k], indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte('}')
	default:
		return fmt.Errorf("tojson: cannot serialize %s", typeName(v))
	}
	return nil
}
