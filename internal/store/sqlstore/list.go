package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gantryml/gantry/internal/store"
)

// Limits of a list page.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// pageLimit applies the default and the maximum.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// where collects the conditions and arguments of a WHERE clause.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// likeMember returns a LIKE pattern matching ",v," inside a column that
// holds a comma-framed list, with LIKE's wildcards in v escaped.
func likeMember(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%," + r.Replace(v) + ",%"
}

// commaList frames values for likeMember: ",a,b,".
func commaList(vs []string) string {
	return "," + strings.Join(vs, ",") + ","
}

// pageToken is the decoded form of ListQuery.Page: where the previous page
// stopped, and the order it was in (a token is only valid for that order).
type pageToken struct {
	Sort string `json:"s"`
	Desc bool   `json:"d,omitempty"`
	Time int64  `json:"t,omitempty"`
	Name string `json:"n,omitempty"`
	ID   string `json:"i"`
}

func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.ID == "" {
		return t, fmt.Errorf("page %q: %w", s, store.ErrInvalidPage)
	}
	return t, nil
}

// listSpec is one table's list query.
type listSpec struct {
	table    string
	timeCol  string // the timeCreated sort column
	nameCol  string // the displayName sort column; "" when not sortable by name
	stateCol string // the lifecycleState sort column; "" when not sortable by state
}

// sortColumn returns the text column a sort key orders by, or "" for the
// time column; an unknown key, or one the table cannot sort by, is
// ErrInvalidPage. "timeAccepted" (work requests) is the time column.
func (spec listSpec) sortColumn(sortBy string) (string, error) {
	col := ""
	switch sortBy {
	case "timeCreated", "timeAccepted":
		return "", nil
	case "displayName":
		col = spec.nameCol
	case "lifecycleState":
		col = spec.stateCol
	default:
		return "", fmt.Errorf("list %s: sort by %q: %w", spec.table, sortBy, store.ErrInvalidPage)
	}
	if col == "" {
		return "", fmt.Errorf("list %s: cannot sort by %s: %w", spec.table, sortBy, store.ErrInvalidPage)
	}
	return col, nil
}

// listRows runs a keyset-paged query: w filters, q orders and pages. It
// reads one row of (sort time, sort text, id, body) and returns the
// bodies of one page and the token of the next. A text sort (displayName,
// lifecycleState) breaks ties by id, a time sort by id as well.
func (o *ops) listRows(ctx context.Context, spec listSpec, w where, lq store.ListQuery) ([]string, string, error) {
	sortBy := lq.SortBy
	if sortBy == "" {
		sortBy = "timeCreated"
	}
	textCol, err := spec.sortColumn(sortBy)
	if err != nil {
		return nil, "", err
	}
	keyCol, nameCol := spec.timeCol, "''"
	if textCol != "" {
		keyCol, nameCol = textCol, textCol
	}
	cmp, dir := ">", "ASC"
	if lq.SortDesc {
		cmp, dir = "<", "DESC"
	}
	if lq.Page != "" {
		t, err := decodeToken(lq.Page)
		if err != nil {
			return nil, "", err
		}
		if t.Sort != sortBy || t.Desc != lq.SortDesc {
			return nil, "", fmt.Errorf("list %s: page token was made for another sort order: %w", spec.table, store.ErrInvalidPage)
		}
		if textCol == "" {
			w.add(fmt.Sprintf("(%[1]s %[2]s ? OR (%[1]s = ? AND id %[2]s ?))", keyCol, cmp), t.Time, t.Time, t.ID)
		} else {
			w.add(fmt.Sprintf("(%[1]s %[2]s ? OR (%[1]s = ? AND id %[2]s ?))", keyCol, cmp), t.Name, t.Name, t.ID)
		}
	}
	order := fmt.Sprintf("%s %s, id %s", keyCol, dir, dir)
	limit := pageLimit(lq.Limit)
	query := fmt.Sprintf("SELECT %s, %s, id, body FROM %s%s ORDER BY %s LIMIT %d",
		spec.timeCol, nameCol, spec.table, w.sql(), order, limit+1)

	var bodies []string
	var last pageToken
	err = o.read(ctx, func(q querier) error {
		rows, err := q.query(ctx, query, w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t pageToken
			var body string
			if err := rows.Scan(&t.Time, &t.Name, &t.ID, &body); err != nil {
				return err
			}
			bodies = append(bodies, body)
			if len(bodies) <= limit {
				last = t
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", spec.table, err)
	}
	next := ""
	if len(bodies) > limit {
		bodies = bodies[:limit]
		last.Sort, last.Desc = sortBy, lq.SortDesc
		if textCol == "" {
			last.Name = ""
		} else {
			last.Time = 0
		}
		next = encodeToken(last)
	}
	return bodies, next, nil
}

// decodeAll unmarshals JSON bodies into values.
func decodeAll[T any](table string, bodies []string) ([]*T, error) {
	out := make([]*T, 0, len(bodies))
	for _, b := range bodies {
		v := new(T)
		if err := json.Unmarshal([]byte(b), v); err != nil {
			return nil, fmt.Errorf("decode %s row: %w", table, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// getBody reads one row's body by a query, or ErrNotFound.
func (o *ops) getBody(ctx context.Context, what, query string, args ...any) (string, error) {
	var body string
	err := o.read(ctx, func(q querier) error {
		return q.queryRow(ctx, query, args...).Scan(&body)
	})
	if err != nil {
		return "", o.classify(err, what)
	}
	return body, nil
}

// getJSON reads one row's body into v.
func getJSON[T any](ctx context.Context, o *ops, what, query string, args ...any) (*T, error) {
	body, err := o.getBody(ctx, what, query, args...)
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return nil, fmt.Errorf("%s: decode: %w", what, err)
	}
	return v, nil
}

// marshal encodes a value for a body column. It fails only on values
// JSON cannot hold (a NaN metric, a channel in a tag map).
func marshal(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%s: encode: %w", what, err)
	}
	return string(b), nil
}
