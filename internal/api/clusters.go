package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
)

func clusterURI(id string) string { return APIVersion + "/dedicatedAiClusters/" + id }

// MaxUnitCount is the most units one dedicated AI cluster may have.
const MaxUnitCount = 64

type createClusterBody struct {
	Type                  *string                   `json:"type"`
	CompartmentID         *string                   `json:"compartmentId"`
	UnitCount             *int                      `json:"unitCount"`
	UnitShape             *string                   `json:"unitShape"`
	DisplayName           *string                   `json:"displayName"`
	Description           *string                   `json:"description"`
	CapacityReservationID *string                   `json:"capacityReservationId"`
	FreeformTags          map[string]string         `json:"freeformTags"`
	DefinedTags           map[string]map[string]any `json:"definedTags"`
}

func checkUnitCount(n int) error {
	if n < 1 || n > MaxUnitCount {
		return BadRequest("unitCount must be from 1 to %d, got %d", MaxUnitCount, n)
	}
	return nil
}

// createCluster is CreateDedicatedAiCluster, answered once per
// opc-retry-token.
func (s *Server) createCluster(w http.ResponseWriter, r *http.Request) error {
	return s.createOnce(w, r, "CreateDedicatedAiCluster", s.replayCluster, s.storeNewCluster)
}

// storeNewCluster is CreateDedicatedAiCluster once its retry token has
// been checked: validate the body, then in one transaction store the
// cluster (CREATING), its queue, its work request, the cluster-create job
// and the retry token.
func (s *Server) storeNewCluster(w http.ResponseWriter, r *http.Request, tenancy string, body []byte, key retryKey) error {
	ctx := r.Context()
	var b createClusterBody
	if err := DecodeJSON(body, &b); err != nil {
		return err
	}
	switch {
	case b.Type == nil || *b.Type == "":
		return Missing("type")
	case b.CompartmentID == nil || *b.CompartmentID == "":
		return Missing("compartmentId")
	case b.UnitCount == nil:
		return Missing("unitCount")
	case b.UnitShape == nil || *b.UnitShape == "":
		return Missing("unitShape")
	}
	if err := oneOf("type", *b.Type, core.ClusterFineTuning, core.ClusterHosting); err != nil {
		return err
	}
	if _, ok := generativeai.GetMappingDedicatedAiClusterUnitShapeEnum(*b.UnitShape); !ok {
		return BadRequest("unitShape %q is not a dedicated AI cluster unit shape; see the API's DedicatedAiClusterUnitShape values", *b.UnitShape)
	}
	if err := checkUnitCount(*b.UnitCount); err != nil {
		return err
	}
	if b.CapacityReservationID != nil && *b.CapacityReservationID != "" {
		return BadRequest("capacityReservationId is not supported: Gantry has no capacity reservations")
	}
	if err := checkText(b.DisplayName, b.Description, nil, nil); err != nil {
		return err
	}
	if err := validTags(b.FreeformTags, b.DefinedTags); err != nil {
		return err
	}
	if err := checkCompartment(ctx, s.Store, tenancy, *b.CompartmentID, "compartmentId"); err != nil {
		return err
	}
	now := s.now()
	c := &core.Cluster{
		ID:               NewOCID(OCIDCluster),
		TenancyID:        tenancy,
		CompartmentID:    *b.CompartmentID,
		DisplayName:      deref(b.DisplayName),
		Description:      deref(b.Description),
		Type:             *b.Type,
		UnitShape:        *b.UnitShape,
		UnitCount:        *b.UnitCount,
		LifecycleState:   core.ClusterCreating,
		LifecycleDetails: "provisioning",
		TimeCreated:      now,
		TimeUpdated:      now,
		FreeformTags:     b.FreeformTags,
		DefinedTags:      b.DefinedTags,
	}
	if c.DisplayName == "" {
		c.DisplayName = "dedicatedaicluster" + now.Format("20060102150405") + "-" + c.ID[len(c.ID)-6:]
	}
	wr := newWorkRequest(tenancy, c.CompartmentID, core.OpCreateCluster, core.EntityTypeCluster, core.ActionInProgress, c.ID, clusterURI(c.ID), now)
	err := s.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.InsertCluster(ctx, c); err != nil {
			return fmt.Errorf("insert cluster: %w", err)
		}
		if err := tx.SetQueueConcurrency(ctx, c.ID, c.UnitCount); err != nil {
			return fmt.Errorf("set cluster queue concurrency: %w", err)
		}
		if err := tx.InsertWorkRequest(ctx, wr); err != nil {
			return fmt.Errorf("insert work request: %w", err)
		}
		if err := tx.EnqueueJob(ctx, newJob(ctx, JobClusterCreate, "", tenancy, c.ID, wr.ID, now)); err != nil {
			return fmt.Errorf("enqueue cluster-create job: %w", err)
		}
		return putRetryToken(ctx, tx, tenancy, key, c.ID, wr.ID, now)
	})
	if err != nil {
		return err
	}
	s.notify()
	writeResource(w, http.StatusOK, toClusterJSON(c), c.ETag, HeaderWorkRequestID, wr.ID)
	return nil
}

func (s *Server) replayCluster(ctx context.Context, w http.ResponseWriter, t *core.RetryToken) error {
	c, err := s.Store.GetCluster(ctx, t.ResourceID)
	if err != nil {
		return fmt.Errorf("get cluster of retry token: %w", err)
	}
	writeResource(w, http.StatusOK, toClusterJSON(c), c.ETag, HeaderWorkRequestID, t.WorkRequestID)
	return nil
}

// getClusterFor returns a cluster of the tenancy, or a 404.
func getClusterFor(ctx context.Context, tx store.Clusters, tenancy, id string) (*core.Cluster, error) {
	return getVisible(ctx, "dedicated AI cluster", id, tx.GetCluster, func(c *core.Cluster) bool { return c.TenancyID == tenancy })
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) error {
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	c, err := getClusterFor(r.Context(), s.Store, tenancy, r.PathValue("dedicatedAiClusterId"))
	if err != nil {
		return err
	}
	writeResource(w, http.StatusOK, toClusterJSON(c), c.ETag)
	return nil
}

var clusterStates = []string{core.ClusterCreating, core.ClusterActive, core.ClusterUpdating, core.ClusterDeleting, core.ClusterDeleted, core.ClusterFailed, "NEEDS_ATTENTION"}

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	lq, err := s.listQuery(r, tenancy, "lifecycleState", clusterStates, "timeCreated", "displayName", "lifecycleState")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	lq.ID = q.Get("id")
	lq.DisplayName = q.Get("displayName")
	if v := q.Get("capacityReservationId"); v != "" {
		// No cluster has a capacity reservation: the filter matches none.
		writePage(w, store.Page[*core.Cluster]{}, toClusterJSON)
		return nil
	}
	page, err := s.Store.ListClusters(ctx, lq)
	if err != nil {
		return fmt.Errorf("list clusters: %w", err)
	}
	writePage(w, page, toClusterJSON)
	return nil
}

type updateClusterBody struct {
	DisplayName  *string                   `json:"displayName"`
	Description  *string                   `json:"description"`
	UnitCount    *int                      `json:"unitCount"`
	FreeformTags map[string]string         `json:"freeformTags"`
	DefinedTags  map[string]map[string]any `json:"definedTags"`
}

// updateCluster is UpdateDedicatedAiCluster. The change (names, tags,
// unitCount, which is the cluster queue's concurrency) applies at once;
// its work request is recorded as SUCCEEDED.
func (s *Server) updateCluster(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	var b updateClusterBody
	if err := decodeUpdate(body, "UpdateDedicatedAiCluster", &b, "displayName", "description", "unitCount", "freeformTags", "definedTags"); err != nil {
		return err
	}
	if b.UnitCount != nil {
		if err := checkUnitCount(*b.UnitCount); err != nil {
			return err
		}
	}
	if err := checkText(b.DisplayName, b.Description, nil, nil); err != nil {
		return err
	}
	if err := validTags(b.FreeformTags, b.DefinedTags); err != nil {
		return err
	}
	var c *core.Cluster
	var wr *core.WorkRequest
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		c, err = getClusterFor(ctx, tx, tenancy, r.PathValue("dedicatedAiClusterId"))
		if err != nil {
			return err
		}
		if c.LifecycleState != core.ClusterActive {
			return IncorrectState("dedicated AI cluster %s is %s; it must be ACTIVE to be updated", c.ID, c.LifecycleState)
		}
		if err := checkIfMatch(r, c.ETag, "cluster"); err != nil {
			return err
		}
		if b.DisplayName != nil {
			c.DisplayName = *b.DisplayName
		}
		if b.Description != nil {
			c.Description = *b.Description
		}
		if b.FreeformTags != nil {
			c.FreeformTags = b.FreeformTags
		}
		if b.DefinedTags != nil {
			c.DefinedTags = b.DefinedTags
		}
		now := s.now()
		if b.UnitCount != nil && *b.UnitCount != c.UnitCount {
			c.UnitCount = *b.UnitCount
			if err := tx.SetQueueConcurrency(ctx, c.ID, c.UnitCount); err != nil {
				return fmt.Errorf("set cluster queue concurrency: %w", err)
			}
		}
		c.TimeUpdated = now
		if err := tx.UpdateCluster(ctx, c, ifMatch(r)); err != nil {
			return fmt.Errorf("update cluster: %w", err)
		}
		wr = newWorkRequest(tenancy, c.CompartmentID, core.OpUpdateCluster, core.EntityTypeCluster, core.ActionUpdated, c.ID, clusterURI(c.ID), now)
		wr.Status = core.WorkRequestSucceeded
		wr.PercentComplete = 100
		wr.TimeStarted, wr.TimeFinished = &now, &now
		if err := tx.InsertWorkRequest(ctx, wr); err != nil {
			return fmt.Errorf("insert work request: %w", err)
		}
		return tx.AppendWorkRequestLog(ctx, wr.ID, core.WorkRequestLog{Message: fmt.Sprintf("dedicated AI cluster updated; unitCount %d", c.UnitCount), Timestamp: now})
	})
	if err != nil {
		return err
	}
	s.notify()
	writeResource(w, http.StatusOK, toClusterJSON(c), c.ETag, HeaderWorkRequestID, wr.ID)
	return nil
}

func (s *Server) deleteCluster(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	var wr *core.WorkRequest
	err = s.Store.InTx(ctx, func(tx store.Tx) error {
		c, err := getClusterFor(ctx, tx, tenancy, r.PathValue("dedicatedAiClusterId"))
		if err != nil {
			return err
		}
		if c.LifecycleState == core.ClusterDeleting || c.LifecycleState == core.ClusterDeleted {
			return IncorrectState("dedicated AI cluster %s is %s already", c.ID, c.LifecycleState)
		}
		if err := checkIfMatch(r, c.ETag, "cluster"); err != nil {
			return err
		}
		n, err := tx.CountJobs(ctx, c.ID, core.JobQueued, core.JobRunning)
		if err != nil {
			return fmt.Errorf("count cluster jobs: %w", err)
		}
		if n > 0 {
			return IncorrectState("dedicated AI cluster %s has %d running or queued fine-tuning jobs; delete or wait for those models first", c.ID, n)
		}
		now := s.now()
		c.LifecycleState = core.ClusterDeleting
		c.LifecycleDetails = "deleting"
		c.TimeUpdated = now
		if err := tx.UpdateCluster(ctx, c, ifMatch(r)); err != nil {
			return fmt.Errorf("update cluster: %w", err)
		}
		wr = newWorkRequest(tenancy, c.CompartmentID, core.OpDeleteCluster, core.EntityTypeCluster, core.ActionInProgress, c.ID, clusterURI(c.ID), now)
		if err := tx.InsertWorkRequest(ctx, wr); err != nil {
			return fmt.Errorf("insert work request: %w", err)
		}
		return tx.EnqueueJob(ctx, newJob(ctx, JobClusterDelete, "", tenancy, c.ID, wr.ID, now))
	})
	if err != nil {
		return err
	}
	s.notify()
	w.Header().Set(HeaderWorkRequestID, wr.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) changeClusterCompartment(w http.ResponseWriter, r *http.Request) error {
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
		c, err := getClusterFor(ctx, tx, tenancy, r.PathValue("dedicatedAiClusterId"))
		if err != nil {
			return err
		}
		if c.LifecycleState == core.ClusterDeleting || c.LifecycleState == core.ClusterDeleted {
			return IncorrectState("dedicated AI cluster %s is %s", c.ID, c.LifecycleState)
		}
		if err := checkCompartment(ctx, tx, tenancy, compartment, "compartmentId"); err != nil {
			return err
		}
		if err := checkIfMatch(r, c.ETag, "cluster"); err != nil {
			return err
		}
		c.CompartmentID = compartment
		c.TimeUpdated = s.now()
		return tx.UpdateCluster(ctx, c, ifMatch(r))
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
