package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// Admin manages identities directly in a deployment's store, for
// `gantry admin`. It works with a server running on the same store.
type Admin struct {
	Store store.Identities
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// ErrAmbiguousTenancy is returned when no tenancy is named and the store
// holds more than one.
var ErrAmbiguousTenancy = errors.New("the store has several tenancies; name one with --tenancy")

// Tenancy returns the tenancy id names, or the only tenancy when id is "".
func (a *Admin) Tenancy(ctx context.Context, id string) (*core.Tenancy, error) {
	if id != "" {
		t, err := a.Store.GetTenancy(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("tenancy %s: %w", id, err)
		}
		return t, nil
	}
	ts, err := a.Store.ListTenancies(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenancies: %w", err)
	}
	switch len(ts) {
	case 0:
		return nil, errors.New("the store has no tenancy yet; start `gantry serve` once on this data directory")
	case 1:
		return ts[0], nil
	}
	return nil, ErrAmbiguousTenancy
}

func checkAdminName(what, name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%s name is required", what)
	}
	if len(name) > 100 {
		return fmt.Errorf("%s name must be at most 100 characters", what)
	}
	return nil
}

// CreateTenancy adds a tenancy with a fresh object storage namespace.
func (a *Admin) CreateTenancy(ctx context.Context, name string) (*core.Tenancy, error) {
	if err := checkAdminName("tenancy", name); err != nil {
		return nil, err
	}
	t := &core.Tenancy{ID: auth.NewOCID("tenancy"), Name: name, Namespace: auth.NewNamespace(), TimeCreated: a.now()}
	if err := a.Store.CreateTenancy(ctx, t); err != nil {
		return nil, fmt.Errorf("create tenancy: %w", err)
	}
	return t, nil
}

// CreateUser adds a user to a tenancy ("" : the only one).
func (a *Admin) CreateUser(ctx context.Context, tenancyID, name string) (*core.User, error) {
	if err := checkAdminName("user", name); err != nil {
		return nil, err
	}
	t, err := a.Tenancy(ctx, tenancyID)
	if err != nil {
		return nil, err
	}
	u := &core.User{ID: auth.NewOCID("user"), TenancyID: t.ID, Name: name, TimeCreated: a.now()}
	if err := a.Store.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// AddKey registers a PEM RSA public key for a user and returns the key
// with its fingerprint.
func (a *Admin) AddKey(ctx context.Context, userID string, publicKeyPEM []byte) (*core.APIKey, error) {
	u, err := a.Store.GetUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", userID, err)
	}
	pub, err := auth.ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	k, err := auth.NewAPIKey(u.TenancyID, u.ID, pub, a.now())
	if err != nil {
		return nil, err
	}
	if err := a.Store.AddAPIKey(ctx, k); err != nil {
		return nil, fmt.Errorf("add key: %w", err)
	}
	return k, nil
}

// CreateCompartment adds a compartment under a tenancy's root
// compartment, or under parentID when it is set.
func (a *Admin) CreateCompartment(ctx context.Context, tenancyID, parentID, name, description string) (*core.Compartment, error) {
	if err := checkAdminName("compartment", name); err != nil {
		return nil, err
	}
	t, err := a.Tenancy(ctx, tenancyID)
	if err != nil {
		return nil, err
	}
	if parentID == "" {
		parentID = t.ID
	} else if parentID != t.ID {
		p, err := a.Store.GetCompartment(ctx, parentID)
		if err != nil {
			return nil, fmt.Errorf("parent compartment %s: %w", parentID, err)
		}
		if p.TenancyID != t.ID {
			return nil, fmt.Errorf("parent compartment %s is not in tenancy %s", parentID, t.ID)
		}
	}
	c := &core.Compartment{ID: auth.NewOCID("compartment"), TenancyID: t.ID, ParentID: parentID, Name: name,
		Description: description, LifecycleState: "ACTIVE", TimeCreated: a.now()}
	if err := a.Store.CreateCompartment(ctx, c); err != nil {
		return nil, fmt.Errorf("create compartment: %w", err)
	}
	return c, nil
}
