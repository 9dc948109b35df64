package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

var workRequestStates = []string{core.WorkRequestAccepted, core.WorkRequestInProgress, core.WorkRequestWaiting, core.WorkRequestSucceeded, core.WorkRequestFailed, core.WorkRequestCanceling, core.WorkRequestCanceled}

// getWorkRequestFor returns a work request of the tenancy, or a 404.
func getWorkRequestFor(ctx context.Context, st store.WorkRequests, tenancy, id string) (*core.WorkRequest, error) {
	return getVisible(ctx, "work request", id, st.GetWorkRequest, func(wr *core.WorkRequest) bool { return wr.TenancyID == tenancy })
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
	lq, err := s.listQuery(r, tenancy, "status", workRequestStates, "timeAccepted")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	lq.ID = q.Get("workRequestId")
	lq.SortBy = "timeCreated" // the store's name for timeAccepted
	page, err := s.Store.ListWorkRequests(ctx, lq, q.Get("resourceId"))
	if err != nil {
		return fmt.Errorf("list work requests: %w", err)
	}
	writePage(w, page, toWorkRequestJSON)
	return nil
}

// workRequestEntries reads the request of ListWorkRequestLogs or
// ListWorkRequestErrors: the tenancy's work request named in the path, and
// paging and sortOrder (oldest first unless sortOrder says otherwise).
func (s *Server) workRequestEntries(r *http.Request) (workRequestID string, q store.LogQuery, err error) {
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return "", q, err
	}
	p, err := parseList(r, "timestamp")
	if err != nil {
		return "", q, err
	}
	if r.URL.Query().Get("sortOrder") == "" {
		p.sortDesc = false
	}
	wr, err := getWorkRequestFor(r.Context(), s.Store, tenancy, r.PathValue("workRequestId"))
	if err != nil {
		return "", q, err
	}
	return wr.ID, store.LogQuery{Limit: p.limit, Page: p.page, Desc: p.sortDesc}, nil
}

func (s *Server) listWorkRequestLogs(w http.ResponseWriter, r *http.Request) error {
	id, q, err := s.workRequestEntries(r)
	if err != nil {
		return err
	}
	page, err := s.Store.ListWorkRequestLogs(r.Context(), id, q)
	if err != nil {
		return fmt.Errorf("list work request logs: %w", err)
	}
	writePage(w, page, func(l core.WorkRequestLog) workRequestLogJSON {
		return workRequestLogJSON{Message: l.Message, Timestamp: timeVal(l.Timestamp)}
	})
	return nil
}

func (s *Server) listWorkRequestErrors(w http.ResponseWriter, r *http.Request) error {
	id, q, err := s.workRequestEntries(r)
	if err != nil {
		return err
	}
	page, err := s.Store.ListWorkRequestErrors(r.Context(), id, q)
	if err != nil {
		return fmt.Errorf("list work request errors: %w", err)
	}
	writePage(w, page, func(e core.WorkRequestError) workRequestErrorJSON {
		return workRequestErrorJSON{Code: e.Code, Message: e.Message, Timestamp: timeVal(e.Timestamp)}
	})
	return nil
}
