package chattemplate

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Values are nil (None), undefined, bool, int64, float64, string, []value,
// *dict, *macro and builtin.
type value = any

// undefined is the value of a missing variable, attribute or key.
type undefined struct{}

// dict is an insertion-ordered mapping with string keys, as Python's.
// Namespaces are dicts whose attributes can be set.
type dict struct {
	keys []string
	m    map[string]value
	ns   bool
}

func newDict() *dict { return &dict{m: map[string]value{}} }

func (d *dict) set(k string, v value) {
	if _, ok := d.m[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.m[k] = v
}

type builtin func(args []value, kw map[string]value) (value, error)

type macro struct {
	n   macroNode
	env *scope
}

// ErrRaised wraps the message of the template's raise_exception call.
var ErrRaised = errors.New("template raised an exception")

// maxOutput bounds a rendering so that a looping template cannot exhaust
// memory.
const maxOutput = 64 << 20

// scope is a variable scope; for-loop bodies and macros get their own.
type scope struct {
	vars   map[string]value
	parent *scope
}

func (s *scope) lookup(name string) (value, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

type renderer struct {
	out strings.Builder
}

type loopSignal int

const (
	sigNone loopSignal = iota
	sigBreak
	sigContinue
)

// Render executes the template with vars as its global variables. Go maps
// become dicts with sorted keys, slices become lists. transformers' globals
// raise_exception and strftime_now, and namespace, range and dict, are
// provided.
func (t *Template) Render(vars map[string]any) (string, error) {
	g := &scope{vars: map[string]value{
		"raise_exception": builtin(func(args []value, _ map[string]value) (value, error) {
			msg := ""
			if len(args) > 0 {
				msg = toStr(args[0])
			}
			return nil, fmt.Errorf("%w: %s", ErrRaised, msg)
		}),
		"strftime_now": builtin(func(args []value, _ map[string]value) (value, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("strftime_now takes one argument")
			}
			return strftime(time.Now(), toStr(args[0])), nil
		}),
		"namespace": builtin(func(args []value, kw map[string]value) (value, error) {
			d := newDict()
			d.ns = true
			for _, a := range args {
				if ad, ok := a.(*dict); ok {
					for _, k := range ad.keys {
						d.set(k, ad.m[k])
					}
				}
			}
			for _, k := range sortedKeys(kw) {
				d.set(k, kw[k])
			}
			return d, nil
		}),
		"dict": builtin(func(args []value, kw map[string]value) (value, error) {
			d := newDict()
			for _, k := range sortedKeys(kw) {
				d.set(k, kw[k])
			}
			return d, nil
		}),
		"range": builtin(builtinRange),
	}}
	for k, v := range vars {
		g.vars[k] = fromGo(v)
	}
	r := &renderer{}
	if _, err := r.exec(t.body, &scope{vars: map[string]value{}, parent: g}); err != nil {
		return "", err
	}
	return r.out.String(), nil
}

func sortedKeys(m map[string]value) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// fromGo converts Go values to template values.
func fromGo(v any) value {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, *dict, builtin, undefined:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		l := make([]value, len(x))
		for i, e := range x {
			l[i] = fromGo(e)
		}
		return l
	case []string:
		l := make([]value, len(x))
		for i, e := range x {
			l[i] = e
		}
		return l
	case []map[string]any:
		l := make([]value, len(x))
		for i, e := range x {
			l[i] = fromGo(e)
		}
		return l
	case map[string]any:
		d := newDict()
		ks := make([]string, 0, len(x))
		for k := range x {
			ks = append(ks, k)
		}
		// Messages put role and content first, as transformers users write them.
		sort.Slice(ks, func(i, j int) bool {
			oi, oj := keyOrder(ks[i]), keyOrder(ks[j])
			if oi != oj {
				return oi < oj
			}
			return ks[i] < ks[j]
		})
		for _, k := range ks {
			d.set(k, fromGo(x[k]))
		}
		return d
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = v
		}
		return fromGo(m)
	}
	return fmt.Sprint(v)
}

func keyOrder(k string) int {
	switch k {
	case "role":
		return 0
	case "content":
		return 1
	}
	return 2
}

func (r *renderer) exec(nodes []node, sc *scope) (loopSignal, error) {
	for _, n := range nodes {
		if r.out.Len() > maxOutput {
			return sigNone, fmt.Errorf("output exceeds %d bytes", maxOutput)
		}
		switch n := n.(type) {
		case textNode:
			r.out.WriteString(n.s)
		case outputNode:
			v, err := eval(n.x, sc)
			if err != nil {
				return sigNone, err
			}
			r.out.WriteString(toStr(v))
		case ifNode:
			done := false
			for i, c := range n.conds {
				v, err := eval(c, sc)
				if err != nil {
					return sigNone, err
				}
				if truthy(v) {
					sig, err := r.exec(n.bodies[i], sc)
					if err != nil || sig != sigNone {
						return sig, err
					}
					done = true
					break
				}
			}
			if !done && n.els != nil {
				sig, err := r.exec(n.els, sc)
				if err != nil || sig != sigNone {
					return sig, err
				}
			}
		case forNode:
			if err := r.execFor(n, sc); err != nil {
				return sigNone, err
			}
		case setNode:
			if err := r.execSet(n, sc); err != nil {
				return sigNone, err
			}
		case macroNode:
			sc.vars[n.name] = &macro{n, sc}
		case breakNode:
			return sigBreak, nil
		case continueNode:
			return sigContinue, nil
		}
	}
	return sigNone, nil
}

func (r *renderer) execSet(n setNode, sc *scope) error {
	var v value
	if n.body != nil {
		sub := &renderer{}
		if _, err := sub.exec(n.body, sc); err != nil {
			return err
		}
		v = sub.out.String()
	} else {
		var err error
		if v, err = eval(n.x, sc); err != nil {
			return err
		}
	}
	if n.attr != "" {
		obj, _ := sc.lookup(n.names[0])
		d, ok := obj.(*dict)
		if !ok || !d.ns {
			return fmt.Errorf("cannot set attribute %q of %s: not a namespace", n.attr, n.names[0])
		}
		d.set(n.attr, v)
		return nil
	}
	if len(n.names) == 1 {
		sc.vars[n.names[0]] = v
		return nil
	}
	items, err := iterate(v)
	if err != nil {
		return err
	}
	if len(items) != len(n.names) {
		return fmt.Errorf("cannot unpack %d values into %d names", len(items), len(n.names))
	}
	for i, name := range n.names {
		sc.vars[name] = items[i]
	}
	return nil
}

func (r *renderer) execFor(n forNode, sc *scope) error {
	it, err := eval(n.iter, sc)
	if err != nil {
		return err
	}
	items, err := iterate(it)
	if err != nil {
		return fmt.Errorf("offset %d: for: %w", n.pos, err)
	}
	bind := func(s *scope, item value) error {
		if len(n.vars) == 1 {
			s.vars[n.vars[0]] = item
			return nil
		}
		parts, err := iterate(item)
		if err != nil || len(parts) != len(n.vars) {
			return fmt.Errorf("offset %d: for: cannot unpack %s into %d names", n.pos, typeName(item), len(n.vars))
		}
		for i, v := range n.vars {
			s.vars[v] = parts[i]
		}
		return nil
	}
	if n.cond != nil {
		var kept []value
		for _, item := range items {
			s := &scope{vars: map[string]value{}, parent: sc}
			if err := bind(s, item); err != nil {
				return err
			}
			v, err := eval(n.cond, s)
			if err != nil {
				return err
			}
			if truthy(v) {
				kept = append(kept, item)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		_, err := r.exec(n.els, sc)
		return err
	}
	for i, item := range items {
		s := &scope{vars: map[string]value{}, parent: sc}
		if err := bind(s, item); err != nil {
			return err
		}
		loop := newDict()
		loop.set("index0", int64(i))
		loop.set("index", int64(i+1))
		loop.set("revindex0", int64(len(items)-1-i))
		loop.set("revindex", int64(len(items)-i))
		loop.set("first", i == 0)
		loop.set("last", i == len(items)-1)
		loop.set("length", int64(len(items)))
		loop.set("previtem", value(undefined{}))
		loop.set("nextitem", value(undefined{}))
		if i > 0 {
			loop.set("previtem", items[i-1])
		}
		if i+1 < len(items) {
			loop.set("nextitem", items[i+1])
		}
		loop.set("cycle", builtin(func(args []value, _ map[string]value) (value, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("loop.cycle needs arguments")
			}
			return args[i%len(args)], nil
		}))
		s.vars["loop"] = loop
		sig, err := r.exec(n.body, s)
		if err != nil {
			return err
		}
		if sig == sigBreak {
			break
		}
	}
	return nil
}

// iterate returns the items a for loop visits: list items, dict keys,
// string characters.
func iterate(v value) ([]value, error) {
	switch x := v.(type) {
	case []value:
		return x, nil
	case *dict:
		l := make([]value, len(x.keys))
		for i, k := range x.keys {
			l[i] = k
		}
		return l, nil
	case string:
		var l []value
		for _, r := range x {
			l = append(l, string(r))
		}
		return l, nil
	case undefined, nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%s is not iterable", typeName(v))
}

func typeName(v value) string {
	switch v.(type) {
	case nil:
		return "none"
	case undefined:
		return "undefined"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "float"
	case string:
		return "string"
	case []value:
		return "list"
	case *dict:
		return "dict"
	}
	return "callable"
}

func truthy(v value) bool {
	switch x := v.(type) {
	case nil, undefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []value:
		return len(x) > 0
	case *dict:
		return len(x.keys) > 0
	}
	return true
}

// toStr renders a value as Jinja's str() would (Python's).
func toStr(v value) string {
	switch x := v.(type) {
	case string:
		return x
	case undefined:
		return ""
	}
	return repr(v, false)
}

func repr(v value, quote bool) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case undefined:
		return ""
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e16 {
			return strconv.FormatFloat(x, 'f', 1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if !quote {
			return x
		}
		if strings.Contains(x, "'") && !strings.Contains(x, "\"") {
			return "\"" + x + "\""
		}
		return "'" + strings.ReplaceAll(strings.ReplaceAll(x, "\\", "\\\\"), "'", "\\'") + "'"
	case []value:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = repr(e, true)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *dict:
		parts := make([]string, len(x.keys))
		for i, k := range x.keys {
			parts[i] = repr(k, true) + ": " + repr(x.m[k], true)
		}
		if x.ns {
			return "<Namespace {" + strings.Join(parts, ", ") + "}>"
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return "<function>"
}

func builtinRange(args []value, _ map[string]value) (value, error) {
	var ns []int64
	for _, a := range args {
		n, ok := a.(int64)
		if !ok {
			return nil, fmt.Errorf("range: %s is not an integer", typeName(a))
		}
		ns = append(ns, n)
	}
	start, stop, step := int64(0), int64(0), int64(1)
	switch len(ns) {
	case 1:
		stop = ns[0]
	case 2:
		start, stop = ns[0], ns[1]
	case 3:
		start, stop, step = ns[0], ns[1], ns[2]
	default:
		return nil, fmt.Errorf("range takes 1 to 3 arguments")
	}
	if step == 0 {
		return nil, fmt.Errorf("range: step is zero")
	}
	var l []value
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		if len(l) >= 1<<20 {
			return nil, fmt.Errorf("range: too long")
		}
		l = append(l, i)
	}
	return l, nil
}

// strftime formats t with the common C strftime verbs.
func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 >= len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'Y':
			fmt.Fprintf(&b, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'b':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
