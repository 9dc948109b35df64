package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/store"
)

// NewObjectChecker adapts objs to ObjectChecker, for CreateModel's dataset
// check: the namespace must be the tenancy's (from ids) and the object must
// exist in it.
func NewObjectChecker(objs *objectstore.Store, ids store.Identities) ObjectChecker {
	return osChecker{objs, ids}
}

type osChecker struct {
	objs *objectstore.Store
	ids  store.Identities
}

func (c osChecker) ObjectExists(ctx context.Context, tenancyID, ns, bucket, object string) error {
	t, err := c.ids.GetTenancy(ctx, tenancyID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Namespace != ns) {
		return fmt.Errorf("namespace %s: %w", ns, ErrObjectNotFound)
	}
	if err != nil {
		return err
	}
	_, err = c.objs.HeadObject(ctx, ns, bucket, object)
	switch {
	case errors.Is(err, objectstore.ErrBucketNotFound), errors.Is(err, objectstore.ErrObjectNotFound), errors.Is(err, objectstore.ErrInvalidName):
		return fmt.Errorf("%s/%s/%s: %w", ns, bucket, object, ErrObjectNotFound)
	}
	return err
}
