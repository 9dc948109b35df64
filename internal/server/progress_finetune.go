package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// The methods below extend the Progress a Trainer receives beyond the
// Progress interface; a Trainer finds them with type assertions against
// its own small interfaces (see internal/finetune), so other Progress
// implementations may leave them out.

// ReportError appends an error (code, message) to the work request's
// errors, for example one per bad dataset line.
func (p *wrProgress) ReportError(ctx context.Context, code, message string) {
	if err := p.st.AppendWorkRequestError(ctx, p.wrID, core.WorkRequestError{Code: code, Message: message, Timestamp: now()}); err != nil {
		p.log.WarnContext(ctx, "append work request error", "work_request", p.wrID, "err", err)
	}
}

// SetModelDetails sets the lifecycleDetails of a model that is still
// CREATING. The write is conditional on the ETag read, so a concurrent
// change (DeleteModel) is never overwritten; such a lost race is not an
// error.
func (p *wrProgress) SetModelDetails(ctx context.Context, modelID, details string) error {
	m, err := p.st.GetModel(ctx, modelID)
	if err != nil {
		return fmt.Errorf("get model %s: %w", modelID, err)
	}
	if m.LifecycleState != core.ModelCreating || m.LifecycleDetails == details {
		return nil
	}
	m.LifecycleDetails = details
	m.TimeUpdated = now()
	if err := p.st.UpdateModel(ctx, m, m.ETag); err != nil && !errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("update model %s: %w", modelID, err)
	}
	return nil
}

// LogMessages returns the messages of the work request's logs in order:
// what earlier attempts of the job logged already.
func (p *wrProgress) LogMessages(ctx context.Context) ([]string, error) {
	var out []string
	page := ""
	for {
		pg, err := p.st.ListWorkRequestLogs(ctx, p.wrID, store.LogQuery{Limit: 1000, Page: page})
		if err != nil {
			return nil, fmt.Errorf("list work request logs: %w", err)
		}
		for _, l := range pg.Items {
			out = append(out, l.Message)
		}
		if pg.Next == "" {
			return out, nil
		}
		page = pg.Next
	}
}

// TenancyNamespace returns the object storage namespace of a tenancy.
func (p *wrProgress) TenancyNamespace(ctx context.Context, tenancyID string) (string, error) {
	t, err := p.st.GetTenancy(ctx, tenancyID)
	if err != nil {
		return "", fmt.Errorf("get tenancy %s: %w", tenancyID, err)
	}
	return t.Namespace, nil
}
