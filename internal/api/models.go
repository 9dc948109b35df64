package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

func modelURI(id string) string { return APIVersion + "/models/" + id }

// createModel is CreateModel, answered once per opc-retry-token.
func (s *Server) createModel(w http.ResponseWriter, r *http.Request) error {
	return s.createOnce(w, r, "CreateModel", s.replayModel, s.storeNewModel)
}

// storeNewModel is CreateModel once its retry token has been checked:
// validate everything, then in one transaction store the model (CREATING),
// its work request, the fine-tuning job on the cluster's queue and the
// retry token.
func (s *Server) storeNewModel(w http.ResponseWriter, r *http.Request, tenancy string, body []byte, key retryKey) error {
	ctx := r.Context()
	var b createModelBody
	if err := DecodeJSON(body, &b); err != nil {
		return err
	}
	m, err := s.validateCreateModel(ctx, tenancy, &b)
	if err != nil {
		return err
	}
	now := s.now()
	m.ID = NewOCID(OCIDModel)
	if m.DisplayName == "" {
		// OCI names an unnamed resource after its type and creation time;
		// the OCID's tail keeps names unique within one second.
		m.DisplayName = "generativeaimodel" + now.Format("20060102150405") + "-" + m.ID[len(m.ID)-6:]
	}
	m.TenancyID = tenancy
	m.TimeCreated, m.TimeUpdated = now, now
	m.LifecycleState = core.ModelCreating
	m.LifecycleDetails = "waiting for a fine-tuning unit of the cluster"
	wr := newWorkRequest(tenancy, m.CompartmentID, core.OpCreateModel, core.EntityTypeModel, core.ActionInProgress, m.ID, modelURI(m.ID), now)
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		// Re-check the cluster inside the transaction: a concurrent delete
		// must not leave a job on a deleted cluster.
		c, err := tx.GetCluster(ctx, m.FineTuneDetails.DedicatedAiClusterID)
		if err != nil {
			return fmt.Errorf("get cluster: %w", err)
		}
		if c.LifecycleState != core.ClusterActive {
			return IncorrectState("fineTuneDetails.dedicatedAiClusterId %s is %s; it must be ACTIVE", c.ID, c.LifecycleState)
		}
		if err := tx.InsertModel(ctx, m); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return Conflict("a model with displayName %q and version %q exists already in this tenancy", m.DisplayName, m.Version)
			}
			return fmt.Errorf("insert model: %w", err)
		}
		if err := tx.InsertWorkRequest(ctx, wr); err != nil {
			return fmt.Errorf("insert work request: %w", err)
		}
		if err := tx.AppendWorkRequestLog(ctx, wr.ID, core.WorkRequestLog{Message: "fine-tuning job queued on dedicated AI cluster " + c.ID, Timestamp: now}); err != nil {
			return fmt.Errorf("append work request log: %w", err)
		}
		if err := tx.EnqueueJob(ctx, newJob(ctx, JobFineTune, c.ID, tenancy, m.ID, wr.ID, now)); err != nil {
			return fmt.Errorf("enqueue fine-tune job: %w", err)
		}
		return putRetryToken(ctx, tx, tenancy, key, m.ID, wr.ID, now)
	})
	if err != nil {
		return err
	}
	s.notify()
	if info := s.deprecationInfo(ctx, m.BaseModelID); info != "" {
		w.Header().Set(HeaderModelDeprecationInfo, info)
	}
	writeResource(w, http.StatusOK, toModelJSON(m, ""), m.ETag, HeaderWorkRequestID, wr.ID)
	return nil
}

// HeaderModelDeprecationInfo is CreateModel's response header naming a
// deprecated base model.
const HeaderModelDeprecationInfo = "model-deprecation-info"

// deprecationInfo describes a base model whose timeDeprecated has passed,
// for the model-deprecation-info header OCI sends only then; "" otherwise.
func (s *Server) deprecationInfo(ctx context.Context, baseID string) string {
	base, err := s.Store.GetModel(ctx, baseID)
	if err != nil || base.TimeDeprecated == nil || base.TimeDeprecated.After(s.now()) {
		return ""
	}
	return fmt.Sprintf("base model %s (%s) was deprecated on %s", base.DisplayName, base.ID, base.TimeDeprecated.UTC().Format(time.RFC3339))
}

// replayModel answers a retried CreateModel with the model it created.
func (s *Server) replayModel(ctx context.Context, w http.ResponseWriter, t *core.RetryToken) error {
	m, err := s.Store.GetModel(ctx, t.ResourceID)
	if err != nil {
		return fmt.Errorf("get model of retry token: %w", err)
	}
	if info := s.deprecationInfo(ctx, m.BaseModelID); info != "" {
		w.Header().Set(HeaderModelDeprecationInfo, info)
	}
	writeResource(w, http.StatusOK, toModelJSON(m, ""), m.ETag, HeaderWorkRequestID, t.WorkRequestID)
	return nil
}

// validateCreateModel applies every rule of CreateModel before anything
// is stored, and returns the model to create with defaults filled in.
func (s *Server) validateCreateModel(ctx context.Context, tenancy string, b *createModelBody) (*core.Model, error) {
	if b.CompartmentID == nil || *b.CompartmentID == "" {
		return nil, Missing("compartmentId")
	}
	if b.BaseModelID == nil || *b.BaseModelID == "" {
		return nil, Missing("baseModelId")
	}
	if b.FineTuneDetails == nil {
		return nil, Missing(ftd)
	}
	if b.FineTuneDetails.DedicatedAiClusterID == nil || *b.FineTuneDetails.DedicatedAiClusterID == "" {
		return nil, Missing(ftd + ".dedicatedAiClusterId")
	}
	if err := checkText(b.DisplayName, b.Description, b.Vendor, b.Version); err != nil {
		return nil, err
	}
	if err := validTags(b.FreeformTags, b.DefinedTags); err != nil {
		return nil, err
	}
	ds, err := parseDataset(b.FineTuneDetails.TrainingDataset)
	if err != nil {
		return nil, err
	}
	if err := checkCompartment(ctx, s.Store, tenancy, *b.CompartmentID, "compartmentId"); err != nil {
		return nil, err
	}
	base, err := s.Store.GetModel(ctx, *b.BaseModelID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && base.TenancyID != "" && base.TenancyID != tenancy) {
		return nil, NotFound("baseModelId %s: model not found or not authorized", *b.BaseModelID)
	}
	if err != nil {
		return nil, fmt.Errorf("get base model: %w", err)
	}
	if base.LifecycleState != core.ModelActive {
		return nil, IncorrectState("baseModelId %s is %s; it must be ACTIVE", base.ID, base.LifecycleState)
	}
	if !slices.Contains(base.Capabilities, core.CapabilityFineTune) {
		return nil, BadRequest("baseModelId %s does not have the FINE_TUNE capability (it has %s)", base.ID, fmtCaps(base.Capabilities))
	}
	layers := 0
	if s.BaseModelLayers != nil {
		var ok bool
		if layers, ok = s.BaseModelLayers(base.ID); !ok {
			return nil, IncorrectState("baseModelId %s: the base model's files are not installed on this server", base.ID)
		}
	}
	tc, err := ParseTrainingConfig(b.FineTuneDetails.TrainingConfig, layers)
	if err != nil {
		return nil, err
	}
	clusterID := *b.FineTuneDetails.DedicatedAiClusterID
	c, err := s.Store.GetCluster(ctx, clusterID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.TenancyID != tenancy || c.LifecycleState == core.ClusterDeleted)) {
		return nil, NotFound("%s.dedicatedAiClusterId %s: cluster not found or not authorized", ftd, clusterID)
	}
	if err != nil {
		return nil, fmt.Errorf("get cluster: %w", err)
	}
	if c.Type != core.ClusterFineTuning {
		return nil, BadRequest("%s.dedicatedAiClusterId %s is a %s cluster; fine-tuning needs a FINE_TUNING cluster", ftd, c.ID, c.Type)
	}
	if c.LifecycleState != core.ClusterActive {
		return nil, IncorrectState("%s.dedicatedAiClusterId %s is %s; it must be ACTIVE", ftd, c.ID, c.LifecycleState)
	}
	if s.Objects != nil {
		if err := s.Objects.ObjectExists(ctx, tenancy, ds.Namespace, ds.Bucket, ds.Object); err != nil {
			if errors.Is(err, ErrObjectNotFound) {
				return nil, BadRequest("%s: object %q in bucket %q of namespace %q does not exist or is not readable by this tenancy", dsf, ds.Object, ds.Bucket, ds.Namespace)
			}
			return nil, fmt.Errorf("check dataset object: %w", err)
		}
	}
	caps := make([]string, 0, len(base.Capabilities))
	for _, c := range base.Capabilities {
		if c != core.CapabilityFineTune {
			caps = append(caps, c)
		}
	}
	m := &core.Model{
		CompartmentID: *b.CompartmentID,
		DisplayName:   deref(b.DisplayName),
		Description:   deref(b.Description),
		Vendor:        deref(b.Vendor),
		Version:       deref(b.Version),
		Type:          core.ModelTypeCustom,
		Capabilities:  caps,
		BaseModelID:   base.ID,
		FineTuneDetails: &core.FineTuneDetails{
			DedicatedAiClusterID: c.ID,
			Dataset:              ds,
			TrainingConfig:       tc,
		},
		FreeformTags: b.FreeformTags,
		DefinedTags:  b.DefinedTags,
	}
	if m.Vendor == "" {
		m.Vendor = base.Vendor
	}
	if m.Version == "" {
		m.Version = "1"
	}
	return m, nil
}

// getModelFor returns a model the tenancy may see: its own custom models
// and every base model; anything else is a 404.
func (s *Server) getModelFor(ctx context.Context, tx store.Models, tenancy, id string) (*core.Model, error) {
	return getVisible(ctx, "model", id, tx.GetModel, func(m *core.Model) bool { return m.Type == core.ModelTypeBase || m.TenancyID == tenancy })
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	m, err := s.getModelFor(r.Context(), s.Store, tenancy, r.PathValue("modelId"))
	if err != nil {
		return err
	}
	writeResource(w, http.StatusOK, toModelJSON(m, tenancy), m.ETag)
	return nil
}

var modelStates = []string{core.ModelActive, core.ModelCreating, core.ModelDeleting, core.ModelDeleted, core.ModelFailed}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	lq, err := s.listQuery(r, tenancy, "lifecycleState", modelStates, "timeCreated", "displayName", "lifecycleState")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	lq.ID = q.Get("id")
	lq.DisplayName = q.Get("displayName")
	lq.Vendor = q.Get("vendor")
	lq.IncludeBase = true
	caps := q["capability"]
	for _, c := range caps {
		if err := oneOf("capability", c, core.CapabilityTextGeneration, core.CapabilityTextSummarization, core.CapabilityTextEmbeddings, core.CapabilityFineTune, core.CapabilityChat, core.CapabilityTextRerank); err != nil {
			return err
		}
	}
	lq.Capabilities = caps
	page, err := s.Store.ListModels(ctx, lq)
	if err != nil {
		return fmt.Errorf("list models: %w", err)
	}
	writePage(w, page, func(m *core.Model) modelJSON {
		j := toModelJSON(m, lq.CompartmentID)
		j.Description, j.TimeUpdated = nil, nil // not in ModelSummary
		return j
	})
	return nil
}

// decodeUpdate decodes an update body, answering a 400 that names any
// field the operation does not update.
func decodeUpdate(body []byte, op string, v any, allowed ...string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return &Error{http.StatusBadRequest, CodeCannotParseRequest, "request body: " + err.Error()}
	}
	for k := range fields {
		if !slices.Contains(allowed, k) {
			return BadRequest("%s cannot change %q; updatable fields are %v", op, k, allowed)
		}
	}
	return DecodeJSON(body, v)
}

type updateModelBody struct {
	DisplayName  *string                   `json:"displayName"`
	Description  *string                   `json:"description"`
	Vendor       *string                   `json:"vendor"`
	Version      *string                   `json:"version"`
	FreeformTags map[string]string         `json:"freeformTags"`
	DefinedTags  map[string]map[string]any `json:"definedTags"`
}

func (s *Server) updateModel(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	var b updateModelBody
	if err := decodeUpdate(body, "UpdateModel", &b, "displayName", "description", "vendor", "version", "freeformTags", "definedTags"); err != nil {
		return err
	}
	if err := checkText(b.DisplayName, b.Description, b.Vendor, b.Version); err != nil {
		return err
	}
	if err := validTags(b.FreeformTags, b.DefinedTags); err != nil {
		return err
	}
	var m *core.Model
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		m, err = s.getModelFor(ctx, tx, tenancy, r.PathValue("modelId"))
		if err != nil {
			return err
		}
		if m.Type == core.ModelTypeBase {
			return IncorrectState("model %s is a BASE model; only CUSTOM models can be updated", m.ID)
		}
		if m.LifecycleState == core.ModelDeleting || m.LifecycleState == core.ModelDeleted {
			return IncorrectState("model %s is %s", m.ID, m.LifecycleState)
		}
		if err := checkIfMatch(r, m.ETag, "model"); err != nil {
			return err
		}
		if b.DisplayName != nil {
			m.DisplayName = *b.DisplayName
		}
		if b.Description != nil {
			m.Description = *b.Description
		}
		if b.Vendor != nil {
			m.Vendor = *b.Vendor
		}
		if b.Version != nil {
			m.Version = *b.Version
		}
		if b.FreeformTags != nil {
			m.FreeformTags = b.FreeformTags
		}
		if b.DefinedTags != nil {
			m.DefinedTags = b.DefinedTags
		}
		m.TimeUpdated = s.now()
		if err := tx.UpdateModel(ctx, m, ifMatch(r)); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return Conflict("a model with displayName %q and version %q exists already in this tenancy", m.DisplayName, m.Version)
			}
			return fmt.Errorf("update model: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeResource(w, http.StatusOK, toModelJSON(m, tenancy), m.ETag)
	return nil
}

// deleteModel is DeleteModel: the model goes DELETING at once, a running
// or queued fine-tuning job is asked to stop, and a model-delete job ends
// it DELETED.
func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	var wr *core.WorkRequest
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		m, err := s.getModelFor(ctx, tx, tenancy, r.PathValue("modelId"))
		if err != nil {
			return err
		}
		if m.Type == core.ModelTypeBase {
			return IncorrectState("model %s is a BASE model; only CUSTOM models can be deleted", m.ID)
		}
		if m.LifecycleState == core.ModelDeleting || m.LifecycleState == core.ModelDeleted {
			return IncorrectState("model %s is %s already", m.ID, m.LifecycleState)
		}
		if err := checkIfMatch(r, m.ETag, "model"); err != nil {
			return err
		}
		now := s.now()
		m.LifecycleState = core.ModelDeleting
		m.LifecycleDetails = "deleting"
		m.TimeUpdated = now
		if err := tx.UpdateModel(ctx, m, ifMatch(r)); err != nil {
			return fmt.Errorf("update model: %w", err)
		}
		if j, err := tx.GetJob(ctx, JobID(JobFineTune, m.ID)); err == nil && (j.State == core.JobQueued || j.State == core.JobRunning) {
			cj, err := tx.RequestCancel(ctx, j.ID)
			if err != nil {
				return fmt.Errorf("cancel fine-tune job %s: %w", j.ID, err)
			}
			if cj.State == core.JobRunning && cj.WorkRequestID != "" {
				// Training stops at its next step; until then its work
				// request is CANCELING (the worker ends it CANCELED).
				if err := markCanceling(ctx, tx, cj.WorkRequestID, now); err != nil {
					return err
				}
			}
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("get job of model: %w", err)
		}
		wr = newWorkRequest(tenancy, m.CompartmentID, core.OpDeleteModel, core.EntityTypeModel, core.ActionInProgress, m.ID, modelURI(m.ID), now)
		if err := tx.InsertWorkRequest(ctx, wr); err != nil {
			return fmt.Errorf("insert work request: %w", err)
		}
		if err := tx.EnqueueJob(ctx, newJob(ctx, JobModelDelete, "", tenancy, m.ID, wr.ID, now)); err != nil {
			return fmt.Errorf("enqueue model-delete job: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notify()
	w.Header().Set(HeaderWorkRequestID, wr.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// markCanceling sets a running work request CANCELING, with a log line.
func markCanceling(ctx context.Context, tx store.WorkRequests, id string, now time.Time) error {
	wr, err := tx.GetWorkRequest(ctx, id)
	if err != nil {
		return fmt.Errorf("get work request %s: %w", id, err)
	}
	if wr.Status != core.WorkRequestAccepted && wr.Status != core.WorkRequestInProgress && wr.Status != core.WorkRequestWaiting {
		return nil
	}
	wr.Status = core.WorkRequestCanceling
	wr.TimeUpdated = now
	if err := tx.UpdateWorkRequest(ctx, wr); err != nil {
		return fmt.Errorf("update work request %s: %w", id, err)
	}
	if err := tx.AppendWorkRequestLog(ctx, id, core.WorkRequestLog{Message: "cancel requested by DeleteModel", Timestamp: now}); err != nil {
		return fmt.Errorf("append work request log: %w", err)
	}
	return nil
}

func (s *Server) changeModelCompartment(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	compartment, err := readChangeCompartment(r)
	if err != nil {
		return err
	}
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		m, err := s.getModelFor(ctx, tx, tenancy, r.PathValue("modelId"))
		if err != nil {
			return err
		}
		if m.Type == core.ModelTypeBase {
			return IncorrectState("model %s is a BASE model; only CUSTOM models can be moved", m.ID)
		}
		if m.LifecycleState == core.ModelDeleting || m.LifecycleState == core.ModelDeleted {
			return IncorrectState("model %s is %s", m.ID, m.LifecycleState)
		}
		if err := checkCompartment(ctx, tx, tenancy, compartment, "compartmentId"); err != nil {
			return err
		}
		if err := checkIfMatch(r, m.ETag, "model"); err != nil {
			return err
		}
		m.CompartmentID = compartment
		m.TimeUpdated = s.now()
		return tx.UpdateModel(ctx, m, ifMatch(r))
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
