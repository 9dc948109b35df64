package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

var workRequestStates = []string{core.WorkRequestAccepted, core.WorkRequestInProgress, core.WorkRequestWaiting, core.WorkRequestSucceeded, core.WorkRequestFailed, core.WorkRequestCanceling, core.WorkRequestCanceled}

func getWorkRequestFor(ctx context.Context, st store.WorkRequests, tenancy, id string) (*core.WorkRequest, error) {
	wr, err := st.GetWorkRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && wr.TenancyID != tenancy) {
		return nil, NotFound("work request %s not found or not authorized", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get work request %s: %w", id, err)
	}
	return wr, nil
}

// workRequestETag is a work request's etag: it changes with its status
// and progress.
func workRequestETag(wr *core.WorkRequest) string {
	return strconv.Quote(wr.Status + "-" + strconv.FormatFloat(wr.PercentComplete, 'f', -1, 64) + "-" + strconv.FormatInt(wr.TimeUpdated.UnixNano(), 36))
}

func (s *Server) getWorkRequest(w http.ResponseWriter, r *http.Request) error {
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	wr, err := getWorkRequestFor(r.Context(), s.Store, tenancy, r.PathValue("workRequestId"))
	if err != nil {
		return err
	}
	if wr.Status == core.WorkRequestAccepted || wr.Status == core.WorkRequestInProgress || wr.Status == core.WorkRequestWaiting {
		w.Header().Set("retry-after", "1")
	}
	writeResource(w, http.StatusOK, toWorkRequestJSON(wr), workRequestETag(wr))
	return nil
}

func (s *Server) listWorkRequests(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	p, err := parseList(r, "timeAccepted")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	compartment := q.Get("compartmentId")
	if err := checkCompartment(ctx, s.Store, tenancy, compartment, "compartmentId"); err != nil {
		return err
	}
	lq := store.ListQuery{
		TenancyID:     tenancy,
		CompartmentID: compartment,
		ID:            q.Get("workRequestId"),
		SortBy:        "timeCreated",
		SortDesc:      p.sortDesc,
		Limit:         p.limit,
		Page:          p.page,
	}
	if v := q.Get("status"); v != "" {
		if err := oneOf("status", v, workRequestStates...); err != nil {
			return err
		}
		lq.LifecycleState = v
	}
	page, err := s.Store.ListWorkRequests(ctx, lq, q.Get("resourceId"))
	if err != nil {
		return fmt.Errorf("list work requests: %w", err)
	}
	out := collection[workRequestJSON]{Items: make([]workRequestJSON, 0, len(page.Items))}
	for _, wr := range page.Items {
		out.Items = append(out.Items, toWorkRequestJSON(wr))
	}
	writeNextPage(w, page.Next)
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listWorkRequestLogs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	p, err := parseList(r, "timestamp")
	if err != nil {
		return err
	}
	if r.URL.Query().Get("sortOrder") == "" {
		p.sortDesc = false
	}
	wr, err := getWorkRequestFor(ctx, s.Store, tenancy, r.PathValue("workRequestId"))
	if err != nil {
		return err
	}
	page, err := s.Store.ListWorkRequestLogs(ctx, wr.ID, store.LogQuery{Limit: p.limit, Page: p.page, Desc: p.sortDesc})
	if err != nil {
		return fmt.Errorf("list work request logs: %w", err)
	}
	out := collection[workRequestLogJSON]{Items: make([]workRequestLogJSON, 0, len(page.Items))}
	for _, l := range page.Items {
		out.Items = append(out.Items, workRequestLogJSON{Message: l.Message, Timestamp: timeVal(l.Timestamp)})
	}
	writeNextPage(w, page.Next)
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listWorkRequestErrors(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	p, err := parseList(r, "timestamp")
	if err != nil {
		return err
	}
	if r.URL.Query().Get("sortOrder") == "" {
		p.sortDesc = false
	}
	wr, err := getWorkRequestFor(ctx, s.Store, tenancy, r.PathValue("workRequestId"))
	if err != nil {
		return err
	}
	page, err := s.Store.ListWorkRequestErrors(ctx, wr.ID, store.LogQuery{Limit: p.limit, Page: p.page, Desc: p.sortDesc})
	if err != nil {
		return fmt.Errorf("list work request errors: %w", err)
	}
	out := collection[workRequestErrorJSON]{Items: make([]workRequestErrorJSON, 0, len(page.Items))}
	for _, e := range page.Items {
		out.Items = append(out.Items, workRequestErrorJSON{Code: e.Code, Message: e.Message, Timestamp: timeVal(e.Timestamp)})
	}
	writeNextPage(w, page.Next)
	WriteJSON(w, http.StatusOK, out)
	return nil
}
