package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

const modelCols = `id, tenancy_id, compartment_id, display_name, lifecycle_state, vendor, type, version, capabilities, time_created, etag, body`

// modelArgs returns the values of modelCols for m, which must be final
// (ETag and times set).
func modelArgs(m *core.Model) ([]any, error) {
	body, err := marshal("model "+m.ID, m)
	if err != nil {
		return nil, err
	}
	return []any{m.ID, m.TenancyID, m.CompartmentID, m.DisplayName, m.LifecycleState, m.Vendor, m.Type,
		m.Version, commaList(m.Capabilities), nanos(m.TimeCreated), m.ETag, body}, nil
}

// InsertModel stores a new model with a fresh ETag and TimeUpdated (and
// TimeCreated when zero), written back to m. ErrConflict when the ID is
// taken, or a live model of the same tenancy has the same DisplayName and
// Version.
func (o *ops) InsertModel(ctx context.Context, m *core.Model) error {
	what := "insert model " + m.ID
	if m.ID == "" {
		return errMissing("insert model", "ID")
	}
	v := *m
	v.TimeCreated = normOrNow(v.TimeCreated)
	v.TimeUpdated = now()
	v.ETag = newETag()
	args, err := modelArgs(&v)
	if err != nil {
		return err
	}
	if err := o.insert(ctx, what, `INSERT INTO models (`+modelCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
		return err
	}
	*m = v
	return nil
}

// UpsertBaseModel inserts or replaces a catalog model (TenancyID empty),
// keyed by ID. When the stored model is the same but for its ETag and
// times, it is left alone and m receives the stored ETag and times, so
// reloading an unchanged catalog at start does not change ETags.
func (o *ops) UpsertBaseModel(ctx context.Context, m *core.Model) error {
	what := "upsert base model " + m.ID
	switch {
	case m.ID == "":
		return errMissing("upsert base model", "ID")
	case m.TenancyID != "":
		return fmt.Errorf("%s: a base model belongs to no tenancy, got TenancyID %s", what, m.TenancyID)
	case m.Type != core.ModelTypeBase:
		return fmt.Errorf("%s: Type must be %s, got %q", what, core.ModelTypeBase, m.Type)
	}
	var err error
	for range 2 {
		v := *m
		err = o.write(ctx, func(q querier) error { return upsertBase(ctx, q, &v, what) })
		if err == nil {
			*m = v
			return nil
		}
		if !errors.Is(err, errRaced) || o.inTx() {
			break
		}
		// Another process inserted the model between our read and our
		// insert: compare with its row this time.
	}
	return o.classify(err, what)
}

// errRaced: a concurrent insert won; the upsert is retried once.
var errRaced = errors.New("base model inserted concurrently")

// upsertBase is one try of UpsertBaseModel in a transaction.
func upsertBase(ctx context.Context, q querier, m *core.Model, what string) error {
	v := *m
	err := func() error {
		var body string
		err := q.queryRow(ctx, `SELECT body FROM models WHERE id = ?`, v.ID).Scan(&body)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			v.TimeCreated = normOrNow(v.TimeCreated)
			v.TimeUpdated = now()
			v.ETag = newETag()
			args, err := modelArgs(&v)
			if err != nil {
				return err
			}
			res, err := q.exec(ctx, `INSERT INTO models (`+modelCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO NOTHING`, args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return errRaced
			}
			return nil
		case err != nil:
			return err
		}
		old, err := decodeOne[core.Model]("models", body)
		if err != nil {
			return err
		}
		if old.Type != core.ModelTypeBase {
			return fmt.Errorf("model %s is a %s model: %w", v.ID, old.Type, store.ErrConflict)
		}
		// Compare with the stored model in the stored model's times.
		cand := v
		cand.ETag, cand.TimeUpdated = old.ETag, old.TimeUpdated
		if cand.TimeCreated.IsZero() {
			cand.TimeCreated = old.TimeCreated
		} else {
			cand.TimeCreated = normOrNow(cand.TimeCreated)
		}
		candBody, err := marshal(what, &cand)
		if err != nil {
			return err
		}
		oldBody, err := marshal(what, old)
		if err != nil {
			return err
		}
		if candBody == oldBody {
			v = cand
			return nil
		}
		cand.TimeUpdated = now()
		cand.ETag = newETag()
		args, err := modelArgs(&cand)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE models SET tenancy_id = ?, compartment_id = ?, display_name = ?, lifecycle_state = ?,
			vendor = ?, type = ?, version = ?, capabilities = ?, time_created = ?, etag = ?, body = ? WHERE id = ?`,
			append(args[1:], v.ID)...); err != nil {
			return err
		}
		v = cand
		return nil
	}()
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// GetModel returns a model by ID (base or custom, any state), or ErrNotFound.
func (o *ops) GetModel(ctx context.Context, id string) (*core.Model, error) {
	return getJSON[core.Model](ctx, o, "get model "+id, `SELECT body FROM models WHERE id = ?`, id)
}

// UpdateModel replaces the stored model with m, giving it a fresh ETag and
// TimeUpdated (written back to m). ifMatch, when not empty, must equal the
// stored ETag (checked in the UPDATE itself), else ErrPrecondition;
// ErrNotFound when there is no such model; ErrConflict as InsertModel.
func (o *ops) UpdateModel(ctx context.Context, m *core.Model, ifMatch string) error {
	what := "update model " + m.ID
	v := *m
	v.TimeCreated = normOrNow(v.TimeCreated)
	v.TimeUpdated = now()
	v.ETag = newETag()
	args, err := modelArgs(&v)
	if err != nil {
		return err
	}
	err = o.updateRow(ctx, "models", m.ID, ifMatch, `UPDATE models SET tenancy_id = ?, compartment_id = ?, display_name = ?,
		lifecycle_state = ?, vendor = ?, type = ?, version = ?, capabilities = ?, time_created = ?, etag = ?, body = ?`, args[1:])
	if err != nil {
		return o.classify(err, what)
	}
	*m = v
	return nil
}

// updateRow runs "set ... WHERE id = ? [AND etag = ?]" and tells a missing
// row (ErrNotFound) from a changed one (ErrPrecondition).
func (o *ops) updateRow(ctx context.Context, table, id, ifMatch, set string, args []any) error {
	query := set + ` WHERE id = ?`
	args = append(args, id)
	if ifMatch != "" {
		query += ` AND etag = ?`
		args = append(args, ifMatch)
	}
	return o.write(ctx, func(q querier) error {
		res, err := q.exec(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var etag string
		if err := q.queryRow(ctx, `SELECT etag FROM `+table+` WHERE id = ?`, id).Scan(&etag); err != nil {
			return err // sql.ErrNoRows: not found
		}
		return fmt.Errorf("if-match %q, stored etag %q: %w", ifMatch, etag, store.ErrPrecondition)
	})
}

// ListModels lists models by q: custom models scoped by TenancyID and
// CompartmentID, plus every base model when IncludeBase; DELETED ones only
// when q.LifecycleState asks for them.
func (o *ops) ListModels(ctx context.Context, lq store.ListQuery) (store.Page[*core.Model], error) {
	var w, scope where
	if lq.TenancyID != "" {
		scope.add("tenancy_id = ?", lq.TenancyID)
	}
	if lq.CompartmentID != "" {
		scope.add("compartment_id = ?", lq.CompartmentID)
	}
	if lq.IncludeBase && len(scope.conds) > 0 {
		w.add("(("+strings.Join(scope.conds, " AND ")+") OR type = ?)", append(scope.args, core.ModelTypeBase)...)
	} else if !lq.IncludeBase {
		w.add("type <> ?", core.ModelTypeBase)
		w.conds = append(w.conds, scope.conds...)
		w.args = append(w.args, scope.args...)
	}
	commonFilters(&w, lq)
	if lq.Vendor != "" {
		w.add("vendor = ?", lq.Vendor)
	}
	if lq.Capability != "" {
		w.add(`capabilities LIKE ? ESCAPE '\'`, likeMember(lq.Capability))
	}
	for _, c := range lq.Capabilities {
		w.add(`capabilities LIKE ? ESCAPE '\'`, likeMember(c))
	}
	bodies, next, err := o.listRows(ctx, listSpec{table: "models", timeCol: "time_created", nameCol: "display_name", stateCol: "lifecycle_state"}, w, lq)
	if err != nil {
		return store.Page[*core.Model]{}, err
	}
	items, err := decodeAll[core.Model]("models", bodies)
	return store.Page[*core.Model]{Items: items, Next: next}, err
}

// commonFilters adds ListQuery's ID, DisplayName and LifecycleState
// filters; with no LifecycleState, DELETED rows are hidden.
func commonFilters(w *where, lq store.ListQuery) {
	if lq.ID != "" {
		w.add("id = ?", lq.ID)
	}
	if lq.DisplayName != "" {
		w.add("display_name = ?", lq.DisplayName)
	}
	if lq.LifecycleState != "" {
		w.add("lifecycle_state = ?", lq.LifecycleState)
	} else {
		w.add("lifecycle_state <> ?", "DELETED")
	}
}

// decodeOne unmarshals one JSON body.
func decodeOne[T any](table, body string) (*T, error) {
	vs, err := decodeAll[T](table, []string{body})
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// InsertCluster stores a new cluster with a fresh ETag and TimeUpdated
// (and TimeCreated when zero), written back to c; ErrConflict when the
// ID is taken.
func (o *ops) InsertCluster(ctx context.Context, c *core.Cluster) error {
	what := "insert cluster " + c.ID
	if c.ID == "" {
		return errMissing("insert cluster", "ID")
	}
	v := *c
	v.TimeCreated = normOrNow(v.TimeCreated)
	v.TimeUpdated = now()
	v.ETag = newETag()
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	if err := o.insert(ctx, what, `INSERT INTO clusters (id, tenancy_id, compartment_id, display_name, lifecycle_state, type, time_created, etag, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenancyID, v.CompartmentID, v.DisplayName, v.LifecycleState, v.Type, nanos(v.TimeCreated), v.ETag, body); err != nil {
		return err
	}
	*c = v
	return nil
}

// GetCluster returns a cluster by ID, or ErrNotFound.
func (o *ops) GetCluster(ctx context.Context, id string) (*core.Cluster, error) {
	return getJSON[core.Cluster](ctx, o, "get cluster "+id, `SELECT body FROM clusters WHERE id = ?`, id)
}

// UpdateCluster replaces the stored cluster; ETags and errors as UpdateModel.
func (o *ops) UpdateCluster(ctx context.Context, c *core.Cluster, ifMatch string) error {
	what := "update cluster " + c.ID
	v := *c
	v.TimeCreated = normOrNow(v.TimeCreated)
	v.TimeUpdated = now()
	v.ETag = newETag()
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	err = o.updateRow(ctx, "clusters", c.ID, ifMatch, `UPDATE clusters SET tenancy_id = ?, compartment_id = ?, display_name = ?,
		lifecycle_state = ?, type = ?, time_created = ?, etag = ?, body = ?`,
		[]any{v.TenancyID, v.CompartmentID, v.DisplayName, v.LifecycleState, v.Type, nanos(v.TimeCreated), v.ETag, body})
	if err != nil {
		return o.classify(err, what)
	}
	*c = v
	return nil
}

// ListClusters lists clusters by q (TenancyID, CompartmentID, ID,
// DisplayName, LifecycleState; DELETED hidden unless asked for).
func (o *ops) ListClusters(ctx context.Context, lq store.ListQuery) (store.Page[*core.Cluster], error) {
	var w where
	if lq.TenancyID != "" {
		w.add("tenancy_id = ?", lq.TenancyID)
	}
	if lq.CompartmentID != "" {
		w.add("compartment_id = ?", lq.CompartmentID)
	}
	commonFilters(&w, lq)
	bodies, next, err := o.listRows(ctx, listSpec{table: "clusters", timeCol: "time_created", nameCol: "display_name", stateCol: "lifecycle_state"}, w, lq)
	if err != nil {
		return store.Page[*core.Cluster]{}, err
	}
	items, err := decodeAll[core.Cluster]("clusters", bodies)
	return store.Page[*core.Cluster]{Items: items, Next: next}, err
}
