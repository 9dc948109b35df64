package sqlstore

import (
	"time"

	"context"
	"errors"
	"fmt"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// errMissing reports a required field left empty.
func errMissing(what, field string) error {
	return fmt.Errorf("%s: %s is required", what, field)
}

// insert runs one INSERT in a write transaction, classifying its error.
func (o *ops) insert(ctx context.Context, what, query string, args ...any) error {
	err := o.write(ctx, func(q querier) error {
		_, err := q.exec(ctx, query, args...)
		return err
	})
	return o.classify(err, what)
}

// CreateTenancy stores a new tenancy; ErrConflict when its ID or
// Namespace is taken. A zero TimeCreated is set to now.
func (o *ops) CreateTenancy(ctx context.Context, t *core.Tenancy) error {
	what := fmt.Sprintf("create tenancy %s", t.ID)
	if t.ID == "" {
		return errMissing("create tenancy", "ID")
	}
	if t.Namespace == "" {
		return errMissing(what, "Namespace")
	}
	v := *t
	v.TimeCreated = normOrNow(v.TimeCreated)
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	if err := o.insert(ctx, what, `INSERT INTO tenancies (id, namespace, time_created, body) VALUES (?, ?, ?, ?)`,
		v.ID, v.Namespace, nanos(v.TimeCreated), body); err != nil {
		return err
	}
	*t = v
	return nil
}

// GetTenancy returns a tenancy by ID, or ErrNotFound.
func (o *ops) GetTenancy(ctx context.Context, id string) (*core.Tenancy, error) {
	return getJSON[core.Tenancy](ctx, o, "get tenancy "+id, `SELECT body FROM tenancies WHERE id = ?`, id)
}

// GetTenancyByNamespace returns the tenancy owning an object storage
// namespace, or ErrNotFound.
func (o *ops) GetTenancyByNamespace(ctx context.Context, namespace string) (*core.Tenancy, error) {
	return getJSON[core.Tenancy](ctx, o, "get tenancy by namespace "+namespace, `SELECT body FROM tenancies WHERE namespace = ?`, namespace)
}

// ListTenancies returns every tenancy, oldest first.
func (o *ops) ListTenancies(ctx context.Context) ([]*core.Tenancy, error) {
	return listAll[core.Tenancy](ctx, o, "tenancies", `SELECT body FROM tenancies ORDER BY time_created, id`)
}

// ClaimBootstrap records, once per database, that the deployment's first
// tenancy is tenancyID, and reports whether this call made the claim
// (false: a claim exists). Inside InTx a concurrent claimer waits until
// this transaction ends, then sees the claim when it committed.
func (o *ops) ClaimBootstrap(ctx context.Context, tenancyID string, at time.Time) (bool, error) {
	if tenancyID == "" {
		return false, errMissing("claim bootstrap", "tenancyID")
	}
	var claimed bool
	err := o.write(ctx, func(q querier) error {
		res, err := q.exec(ctx, `INSERT INTO bootstrap (id, tenancy_id, time_created) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`,
			tenancyID, nanos(normOrNow(at)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	return claimed, o.classify(err, "claim bootstrap")
}

// CreateUser stores a new user; ErrNotFound when its tenancy does not
// exist, ErrConflict when its ID is taken.
func (o *ops) CreateUser(ctx context.Context, u *core.User) error {
	what := fmt.Sprintf("create user %s", u.ID)
	if u.ID == "" {
		return errMissing("create user", "ID")
	}
	if u.TenancyID == "" {
		return errMissing(what, "TenancyID")
	}
	v := *u
	v.TimeCreated = normOrNow(v.TimeCreated)
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	if err := o.insert(ctx, what, `INSERT INTO users (id, tenancy_id, time_created, body) VALUES (?, ?, ?, ?)`,
		v.ID, v.TenancyID, nanos(v.TimeCreated), body); err != nil {
		return err
	}
	*u = v
	return nil
}

// GetUser returns a user by ID, or ErrNotFound.
func (o *ops) GetUser(ctx context.Context, id string) (*core.User, error) {
	return getJSON[core.User](ctx, o, "get user "+id, `SELECT body FROM users WHERE id = ?`, id)
}

// ListUsers returns a tenancy's users, oldest first.
func (o *ops) ListUsers(ctx context.Context, tenancyID string) ([]*core.User, error) {
	return listAll[core.User](ctx, o, "users", `SELECT body FROM users WHERE tenancy_id = ? ORDER BY time_created, id`, tenancyID)
}

// AddAPIKey stores a user's public key; ErrNotFound when the user does
// not exist, ErrConflict when the user has that fingerprint already.
func (o *ops) AddAPIKey(ctx context.Context, k *core.APIKey) error {
	what := fmt.Sprintf("add API key %s/%s/%s", k.TenancyID, k.UserID, k.Fingerprint)
	switch {
	case k.TenancyID == "":
		return errMissing(what, "TenancyID")
	case k.UserID == "":
		return errMissing(what, "UserID")
	case k.Fingerprint == "":
		return errMissing(what, "Fingerprint")
	case k.PublicKeyPEM == "":
		return errMissing(what, "PublicKeyPEM")
	}
	v := *k
	v.TimeCreated = normOrNow(v.TimeCreated)
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	err = o.write(ctx, func(q querier) error {
		// The user must belong to the key's tenancy.
		var tenancy string
		if err := q.queryRow(ctx, `SELECT tenancy_id FROM users WHERE id = ?`, v.UserID).Scan(&tenancy); err != nil {
			return err
		}
		if tenancy != v.TenancyID {
			return fmt.Errorf("user %s is in tenancy %s: %w", v.UserID, tenancy, store.ErrNotFound)
		}
		_, err := q.exec(ctx, `INSERT INTO api_keys (tenancy_id, user_id, fingerprint, time_created, body) VALUES (?, ?, ?, ?, ?)`,
			v.TenancyID, v.UserID, v.Fingerprint, nanos(v.TimeCreated), body)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return o.classify(err, what)
	}
	*k = v
	return nil
}

// GetAPIKey returns the key named by a signature's keyId, or ErrNotFound.
func (o *ops) GetAPIKey(ctx context.Context, tenancyID, userID, fingerprint string) (*core.APIKey, error) {
	return getJSON[core.APIKey](ctx, o, fmt.Sprintf("get API key %s/%s/%s", tenancyID, userID, fingerprint),
		`SELECT body FROM api_keys WHERE tenancy_id = ? AND user_id = ? AND fingerprint = ?`, tenancyID, userID, fingerprint)
}

// CreateCompartment stores a new compartment; ErrNotFound when its
// tenancy does not exist, ErrConflict when its ID is taken.
func (o *ops) CreateCompartment(ctx context.Context, c *core.Compartment) error {
	what := fmt.Sprintf("create compartment %s", c.ID)
	if c.ID == "" {
		return errMissing("create compartment", "ID")
	}
	if c.TenancyID == "" {
		return errMissing(what, "TenancyID")
	}
	v := *c
	v.TimeCreated = normOrNow(v.TimeCreated)
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	if err := o.insert(ctx, what, `INSERT INTO compartments (id, tenancy_id, time_created, body) VALUES (?, ?, ?, ?)`,
		v.ID, v.TenancyID, nanos(v.TimeCreated), body); err != nil {
		return err
	}
	*c = v
	return nil
}

// GetCompartment returns a compartment by ID, or ErrNotFound.
func (o *ops) GetCompartment(ctx context.Context, id string) (*core.Compartment, error) {
	return getJSON[core.Compartment](ctx, o, "get compartment "+id, `SELECT body FROM compartments WHERE id = ?`, id)
}

// ListCompartments returns a tenancy's compartments, oldest first.
func (o *ops) ListCompartments(ctx context.Context, tenancyID string) ([]*core.Compartment, error) {
	return listAll[core.Compartment](ctx, o, "compartments", `SELECT body FROM compartments WHERE tenancy_id = ? ORDER BY time_created, id`, tenancyID)
}

// listAll reads every body a query returns.
func listAll[T any](ctx context.Context, o *ops, table, query string, args ...any) ([]*T, error) {
	var bodies []string
	err := o.read(ctx, func(q querier) error {
		rows, err := q.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				return err
			}
			bodies = append(bodies, b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	return decodeAll[T](table, bodies)
}
