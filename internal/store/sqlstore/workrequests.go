package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// workRequestArgs returns a work request's columns after the ID.
func workRequestArgs(w *core.WorkRequest) ([]any, error) {
	body, err := marshal("work request "+w.ID, w)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(w.Resources))
	for i, r := range w.Resources {
		ids[i] = r.Identifier
	}
	return []any{w.TenancyID, w.CompartmentID, w.OperationType, w.Status, commaList(ids), nanos(w.TimeAccepted), body}, nil
}

// InsertWorkRequest stores a new work request (TimeAccepted and
// TimeUpdated default to now); ErrConflict when the ID is taken.
func (o *ops) InsertWorkRequest(ctx context.Context, w *core.WorkRequest) error {
	what := "insert work request " + w.ID
	if w.ID == "" {
		return errMissing("insert work request", "ID")
	}
	v := *w
	v.TimeAccepted = normOrNow(v.TimeAccepted)
	v.TimeUpdated = now()
	args, err := workRequestArgs(&v)
	if err != nil {
		return err
	}
	if err := o.insert(ctx, what, `INSERT INTO work_requests (id, tenancy_id, compartment_id, operation_type, status, resource_ids, time_created, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{v.ID}, args...)...); err != nil {
		return err
	}
	*w = v
	return nil
}

// GetWorkRequest returns a work request by ID, or ErrNotFound.
func (o *ops) GetWorkRequest(ctx context.Context, id string) (*core.WorkRequest, error) {
	return getJSON[core.WorkRequest](ctx, o, "get work request "+id, `SELECT body FROM work_requests WHERE id = ?`, id)
}

// UpdateWorkRequest replaces a stored work request and sets its
// TimeUpdated to now (written back to w); ErrNotFound when missing.
func (o *ops) UpdateWorkRequest(ctx context.Context, w *core.WorkRequest) error {
	what := "update work request " + w.ID
	v := *w
	v.TimeAccepted = normOrNow(v.TimeAccepted)
	v.TimeUpdated = now()
	args, err := workRequestArgs(&v)
	if err != nil {
		return err
	}
	err = o.write(ctx, func(q querier) error {
		res, err := q.exec(ctx, `UPDATE work_requests SET tenancy_id = ?, compartment_id = ?, operation_type = ?, status = ?,
			resource_ids = ?, time_created = ?, body = ? WHERE id = ?`, append(args, v.ID)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return o.classify(err, what)
	}
	*w = v
	return nil
}

// ListWorkRequests lists work requests by q (TenancyID, CompartmentID,
// ID, LifecycleState as the status) and, when resourceID is set, only
// those acting on that resource. Sorted by TimeAccepted.
func (o *ops) ListWorkRequests(ctx context.Context, lq store.ListQuery, resourceID string) (store.Page[*core.WorkRequest], error) {
	var w where
	if lq.TenancyID != "" {
		w.add("tenancy_id = ?", lq.TenancyID)
	}
	if lq.CompartmentID != "" {
		w.add("compartment_id = ?", lq.CompartmentID)
	}
	if lq.ID != "" {
		w.add("id = ?", lq.ID)
	}
	if lq.LifecycleState != "" {
		w.add("status = ?", lq.LifecycleState)
	}
	if resourceID != "" {
		w.add(`resource_ids LIKE ? ESCAPE '\'`, likeMember(resourceID))
	}
	bodies, next, err := o.listRows(ctx, listSpec{table: "work_requests", timeCol: "time_created"}, w, lq)
	if err != nil {
		return store.Page[*core.WorkRequest]{}, err
	}
	items, err := decodeAll[core.WorkRequest]("work_requests", bodies)
	return store.Page[*core.WorkRequest]{Items: items, Next: next}, err
}

// AppendWorkRequestLog appends a log line (a zero Timestamp becomes now);
// ErrNotFound when the work request does not exist.
func (o *ops) AppendWorkRequestLog(ctx context.Context, workRequestID string, l core.WorkRequestLog) error {
	return o.insert(ctx, "append log to work request "+workRequestID,
		`INSERT INTO work_request_logs (work_request_id, message, time_created) VALUES (?, ?, ?)`,
		workRequestID, l.Message, nanos(normOrNow(l.Timestamp)))
}

// AppendWorkRequestError appends an error (a zero Timestamp becomes now);
// ErrNotFound when the work request does not exist.
func (o *ops) AppendWorkRequestError(ctx context.Context, workRequestID string, e core.WorkRequestError) error {
	return o.insert(ctx, "append error to work request "+workRequestID,
		`INSERT INTO work_request_errors (work_request_id, code, message, time_created) VALUES (?, ?, ?, ?)`,
		workRequestID, e.Code, e.Message, nanos(normOrNow(e.Timestamp)))
}

// ListWorkRequestLogs returns a work request's log lines in the order
// they were appended (newest first with q.Desc), q.Limit (default 100, at
// most 1000) at a time; ErrNotFound when the work request does not exist.
func (o *ops) ListWorkRequestLogs(ctx context.Context, workRequestID string, q store.LogQuery) (store.Page[core.WorkRequestLog], error) {
	var out store.Page[core.WorkRequestLog]
	next, err := o.listAppended(ctx, "work_request_logs", "message, message", workRequestID, q, func(_, msg string, t int64) {
		out.Items = append(out.Items, core.WorkRequestLog{Message: msg, Timestamp: fromNanos(t)})
	})
	out.Next = next
	return out, err
}

// ListWorkRequestErrors returns a work request's errors as
// ListWorkRequestLogs returns its logs.
func (o *ops) ListWorkRequestErrors(ctx context.Context, workRequestID string, q store.LogQuery) (store.Page[core.WorkRequestError], error) {
	var out store.Page[core.WorkRequestError]
	next, err := o.listAppended(ctx, "work_request_errors", "code, message", workRequestID, q, func(code, msg string, t int64) {
		out.Items = append(out.Items, core.WorkRequestError{Code: code, Message: msg, Timestamp: fromNanos(t)})
	})
	out.Next = next
	return out, err
}

// listAppended pages through a log or error table by seq. The page token
// is the last seq returned, in decimal, prefixed with "d" when descending,
// so a token made for one order is refused in the other.
func (o *ops) listAppended(ctx context.Context, table, cols, workRequestID string, lq store.LogQuery,
	add func(a, b string, t int64)) (string, error) {
	what := fmt.Sprintf("list %s of work request %s", table, workRequestID)
	prefix, cmp, dir := "", ">", "ASC"
	if lq.Desc {
		prefix, cmp, dir = "d", "<", "DESC"
	}
	var after int64 = -1
	if lq.Page != "" {
		digits, ok := strings.CutPrefix(lq.Page, prefix)
		n, err := strconv.ParseInt(digits, 10, 64)
		if !ok || err != nil || n < 0 {
			return "", fmt.Errorf("%s: page %q: %w", what, lq.Page, store.ErrInvalidPage)
		}
		after = n
	}
	cond := ""
	args := []any{workRequestID}
	if after >= 0 {
		cond = fmt.Sprintf(" AND seq %s ?", cmp)
		args = append(args, after)
	}
	limit := pageLimit(lq.Limit)
	next := ""
	err := o.read(ctx, func(q querier) error {
		var one int
		if err := q.queryRow(ctx, `SELECT 1 FROM work_requests WHERE id = ?`, workRequestID).Scan(&one); err != nil {
			return err
		}
		rows, err := q.query(ctx, fmt.Sprintf(`SELECT seq, %s, time_created FROM %s WHERE work_request_id = ?%s ORDER BY seq %s LIMIT %d`,
			cols, table, cond, dir, limit+1), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		var last int64
		for rows.Next() {
			var seq, t int64
			var a, b string
			if err := rows.Scan(&seq, &a, &b, &t); err != nil {
				return err
			}
			n++
			if n > limit {
				next = prefix + strconv.FormatInt(last, 10)
				break
			}
			last = seq
			add(a, b, t)
		}
		return rows.Err()
	})
	return next, o.classify(err, what)
}
