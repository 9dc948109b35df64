package client

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"
)

// Print writes v (an SDK value or a slice of them) as the OCI CLI does:
// JSON {"data": v} with kebab-case keys, plus the extra top-level fields
// (such as "etag" or "opc-work-request-id") that are not empty; or, with
// format "table", a table of v's scalar fields.
func Print(w io.Writer, format string, v any, extra map[string]string) error {
	data, err := kebabValue(v)
	if err != nil {
		return err
	}
	switch format {
	case "", "json":
		top := map[string]any{"data": data}
		for k, val := range extra {
			if val != "" {
				top[k] = val
			}
		}
		b, err := json.MarshalIndent(top, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "table":
		return printTable(w, data)
	}
	return fmt.Errorf("unknown output format %q (want json or table)", format)
}

// kebabValue round-trips v through JSON and renames object keys from
// camelCase to kebab-case, leaving user-chosen keys (tags, metadata) alone.
func kebabValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return kebabKeys(generic), nil
}

var verbatimKeys = map[string]bool{"freeformTags": true, "definedTags": true, "systemTags": true, "metadata": true, "opcMeta": true}

func kebabKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if verbatimKeys[k] {
				out[Kebab(k)] = val
				continue
			}
			out[Kebab(k)] = kebabKeys(val)
		}
		return out
	case []any:
		for i := range t {
			t[i] = kebabKeys(t[i])
		}
		return t
	}
	return v
}

// Kebab converts camelCase to kebab-case: "lifecycleState" → "lifecycle-state",
// "dedicatedAiClusterId" → "dedicated-ai-cluster-id".
func Kebab(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if i > 0 && (prevLower || (nextLower && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// columnOrder ranks well-known columns first; others follow alphabetically.
var columnOrder = []string{
	"name", "display-name", "id", "type", "operation-type", "status", "lifecycle-state", "version", "vendor",
	"unit-shape", "unit-count", "percent-complete", "size", "md5", "etag", "code", "message", "timestamp",
	"time-created", "time-accepted", "time-finished",
}

// printTable prints a list (or one object as a one-row list) with one
// column per scalar field present in any row.
func printTable(w io.Writer, data any) error {
	var rows []map[string]any
	switch t := data.(type) {
	case []any:
		for _, e := range t {
			if m, ok := e.(map[string]any); ok {
				rows = append(rows, m)
			} else {
				rows = append(rows, map[string]any{"value": e})
			}
		}
	case map[string]any:
		if items, ok := t["items"].([]any); ok && len(t) == 1 {
			return printTable(w, items)
		}
		return printRecord(w, t)
	default:
		_, err := fmt.Fprintln(w, data)
		return err
	}
	present := map[string]bool{}
	for _, r := range rows {
		for k, v := range r {
			switch v.(type) {
			case map[string]any, []any, nil:
			default:
				present[k] = true
			}
		}
	}
	var cols []string
	for _, c := range columnOrder {
		if present[c] {
			cols = append(cols, c)
			delete(present, c)
		}
	}
	var rest []string
	for c := range present {
		rest = append(rest, c)
	}
	sort.Strings(rest)
	cols = append(cols, rest...)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			if v, ok := r[c]; ok && v != nil {
				vals[i] = fmt.Sprint(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

// printRecord prints one object as FIELD/VALUE rows, well-known fields
// first; nested objects are printed as compact JSON.
func printRecord(w io.Writer, m map[string]any) error {
	var keys []string
	seen := map[string]bool{}
	for _, c := range columnOrder {
		if _, ok := m[c]; ok {
			keys = append(keys, c)
			seen[c] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(keys, rest...)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tVALUE")
	for _, k := range keys {
		v := m[k]
		var s string
		switch v.(type) {
		case nil:
			continue
		case map[string]any, []any:
			b, _ := json.Marshal(v)
			s = string(b)
		default:
			s = fmt.Sprint(v)
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, s)
	}
	return tw.Flush()
}
