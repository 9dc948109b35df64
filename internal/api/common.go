package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// Job kinds the API queues; the server registers a handler for each.
const (
	JobFineTune      = "fine-tune"
	JobModelDelete   = "model-delete"
	JobClusterCreate = "cluster-create"
	JobClusterDelete = "cluster-delete"
)

// Headers of the API.
const (
	HeaderETag          = "etag"
	HeaderIfMatch       = "if-match"
	HeaderRetryToken    = "opc-retry-token"
	HeaderWorkRequestID = "opc-work-request-id"
	HeaderNextPage      = "opc-next-page"
)

// retryTokenWindow is how long an opc-retry-token is remembered.
const retryTokenWindow = 24 * time.Hour

// NewOCID returns a new random OCID of the given resource type, for
// example NewOCID("generativeaimodel").
func NewOCID(resourceType string) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return "ocid1." + resourceType + ".oc1.." + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// OCID resource types of the API's resources.
const (
	OCIDModel       = "generativeaimodel"
	OCIDCluster     = "generativeaidedicatedaicluster"
	OCIDWorkRequest = "generativeaiworkrequest"
)

// tenancyOf returns the caller's tenancy, or a 401.
func (s *Server) tenancyOf(r *http.Request) (string, error) {
	if s.Caller != nil {
		if t, _, ok := s.Caller(r.Context()); ok && t != "" {
			return t, nil
		}
	}
	return "", &Error{http.StatusUnauthorized, CodeNotAuthenticated, "the request is not authenticated"}
}

// getVisible returns the resource get finds under id if visible says the
// caller's tenancy may see it. A missing resource and one the tenancy may
// not see are the same 404, naming the resource as kind, so that a caller
// learns nothing of other tenancies' resources.
func getVisible[T any](ctx context.Context, kind, id string, get func(context.Context, string) (*T, error), visible func(*T) bool) (*T, error) {
	v, err := get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !visible(v)) {
		return nil, NotFound("%s %s not found or not authorized", kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	return v, nil
}

// readChangeCompartment reads the body of a Change*Compartment operation
// and returns the compartmentId it moves the resource to.
func readChangeCompartment(r *http.Request) (string, error) {
	body, err := ReadBody(r)
	if err != nil {
		return "", err
	}
	var b struct {
		CompartmentID *string `json:"compartmentId"`
	}
	if err := DecodeJSON(body, &b); err != nil {
		return "", err
	}
	if b.CompartmentID == nil || *b.CompartmentID == "" {
		return "", Missing("compartmentId")
	}
	return *b.CompartmentID, nil
}

// checkCompartment answers whether compartmentID is the tenancy's root
// compartment or an active compartment inside it; a compartment of
// another tenancy is a 404, as is one that does not exist.
func checkCompartment(ctx context.Context, tx store.Identities, tenancyID, compartmentID, field string) error {
	if compartmentID == "" {
		return Missing(field)
	}
	if compartmentID == tenancyID {
		return nil
	}
	c, err := tx.GetCompartment(ctx, compartmentID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.TenancyID != tenancyID || c.LifecycleState == "DELETED")) {
		return NotFound("%s %s: compartment not found or not authorized", field, compartmentID)
	}
	if err != nil {
		return fmt.Errorf("get compartment %s: %w", compartmentID, err)
	}
	return nil
}

// listParams are the paging and sorting query parameters of a list.
type listParams struct {
	limit    int
	page     string
	sortBy   string
	sortDesc bool
}

// maxListLimit is the largest page a list answers.
const maxListLimit = 1000

// parseList reads limit, page, sortBy and sortOrder; sortBy must be one of
// sortKeys (the first is the default). timeCreated-like keys sort newest
// first unless sortOrder says otherwise; displayName sorts A to Z.
func parseList(r *http.Request, sortKeys ...string) (listParams, error) {
	q := r.URL.Query()
	var p listParams
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return p, BadRequest("limit must be an integer from 1 to %d, got %q", maxListLimit, v)
		}
		p.limit = n
	}
	p.page = q.Get("page")
	if len(p.page) > 4096 {
		return p, BadRequest("page token is too long")
	}
	p.sortBy = sortKeys[0]
	if v := q.Get("sortBy"); v != "" {
		ok := false
		for _, k := range sortKeys {
			ok = ok || k == v
		}
		if !ok {
			return p, BadRequest("sortBy must be one of %s, got %q", strings.Join(sortKeys, ", "), v)
		}
		p.sortBy = v
	}
	p.sortDesc = strings.HasPrefix(p.sortBy, "time")
	switch v := q.Get("sortOrder"); v {
	case "":
	case "ASC":
		p.sortDesc = false
	case "DESC":
		p.sortDesc = true
	default:
		return p, BadRequest("sortOrder must be ASC or DESC, got %q", v)
	}
	return p, nil
}

// listQuery reads the query parameters every resource list shares into a
// store query for the tenancy: paging and sorting (sortBy one of sortKeys,
// the first the default), compartmentId, which must be the tenancy's, and
// the state filter named stateParam, one of states. The caller adds its
// resource's own filters.
func (s *Server) listQuery(r *http.Request, tenancy, stateParam string, states []string, sortKeys ...string) (store.ListQuery, error) {
	p, err := parseList(r, sortKeys...)
	if err != nil {
		return store.ListQuery{}, err
	}
	q := r.URL.Query()
	compartment := q.Get("compartmentId")
	if err := checkCompartment(r.Context(), s.Store, tenancy, compartment, "compartmentId"); err != nil {
		return store.ListQuery{}, err
	}
	lq := store.ListQuery{
		TenancyID:     tenancy,
		CompartmentID: compartment,
		SortBy:        p.sortBy,
		SortDesc:      p.sortDesc,
		Limit:         p.limit,
		Page:          p.page,
	}
	if v := q.Get(stateParam); v != "" {
		if err := oneOf(stateParam, v, states...); err != nil {
			return store.ListQuery{}, err
		}
		lq.LifecycleState = v
	}
	return lq, nil
}

// writePage answers 200 with one page of a list: its items as toJSON
// writes them (an empty page is an empty list, never null), and
// opc-next-page when there is a next page.
func writePage[T, J any](w http.ResponseWriter, page store.Page[T], toJSON func(T) J) {
	out := collection[J]{Items: make([]J, 0, len(page.Items))}
	for _, it := range page.Items {
		out.Items = append(out.Items, toJSON(it))
	}
	writeNextPage(w, page.Next)
	WriteJSON(w, http.StatusOK, out)
}

// oneOf checks that v is one of allowed, naming field in the error.
func oneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return BadRequest("%s must be one of %s, got %q", field, strings.Join(allowed, ", "), v)
}

// bodyHash is the hex SHA-256 of a request body, for retry tokens.
func bodyHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// retryToken reads the opc-retry-token header and, when a stored token
// matches, returns it: the same operation and body mean the request is a
// retry (the caller answers the first result); anything else is a 409.
func (s *Server) retryToken(ctx context.Context, r *http.Request, tenancyID, op, hash string) (string, *core.RetryToken, error) {
	token := r.Header.Get(HeaderRetryToken)
	if token == "" {
		return "", nil, nil
	}
	if len(token) > 64 {
		return "", nil, BadRequest("%s must be at most 64 characters", HeaderRetryToken)
	}
	t, err := s.Store.GetRetryToken(ctx, tenancyID, token, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return token, nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("get retry token: %w", err)
	}
	if t.Operation != op || t.BodyHash != hash {
		return "", nil, Conflict("%s %q was used within the last 24 hours for a different request", HeaderRetryToken, token)
	}
	return token, t, nil
}

// retryKey is what a create request's opc-retry-token is remembered
// under: the token ("" when the request has none), the operation and the
// hash of the body.
type retryKey struct {
	token, op, hash string
}

// putRetryToken remembers key for the created resource inside tx. It
// returns errRetryRace when a concurrent request stored the same token
// first.
func putRetryToken(ctx context.Context, tx store.Tx, tenancyID string, key retryKey, resourceID, workRequestID string, now time.Time) error {
	if key.token == "" {
		return nil
	}
	err := tx.PutRetryToken(ctx, &core.RetryToken{TenancyID: tenancyID, Token: key.token, Operation: key.op, BodyHash: key.hash, ResourceID: resourceID, WorkRequestID: workRequestID, TimeCreated: now})
	if errors.Is(err, store.ErrConflict) {
		return errRetryRace
	}
	if err != nil {
		return fmt.Errorf("put retry token: %w", err)
	}
	return nil
}

// errRetryRace marks a create that lost a race with a concurrent request
// carrying the same retry token; the handler then answers as for a retry.
var errRetryRace = errors.New("retry token stored concurrently")

// createOnce answers the create operation op at most once per
// opc-retry-token. It reads the caller's tenancy and the body; when the
// request's token names an earlier request with the same operation and
// body, replay answers with what that request created. Otherwise create
// runs, and stores its retryKey with putRetryToken in the transaction that
// creates the resource; if a concurrent request with the same token stored
// it first (errRetryRace), that request's result is replayed instead.
func (s *Server) createOnce(w http.ResponseWriter, r *http.Request, op string,
	replay func(ctx context.Context, w http.ResponseWriter, prev *core.RetryToken) error,
	create func(w http.ResponseWriter, r *http.Request, tenancy string, body []byte, key retryKey) error) error {
	ctx := r.Context()
	tenancy, err := s.tenancyOf(r)
	if err != nil {
		return err
	}
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	hash := bodyHash(body)
	token, prev, err := s.retryToken(ctx, r, tenancy, op, hash)
	if err != nil {
		return err
	}
	if prev != nil {
		return replay(ctx, w, prev)
	}
	err = create(w, r, tenancy, body, retryKey{token: token, op: op, hash: hash})
	if !errors.Is(err, errRetryRace) {
		return err
	}
	if _, prev, err = s.retryToken(ctx, r, tenancy, op, hash); err != nil {
		return err
	}
	if prev == nil {
		return fmt.Errorf("retry token vanished after a conflict")
	}
	return replay(ctx, w, prev)
}

// newWorkRequest returns an ACCEPTED work request acting on one resource.
func newWorkRequest(tenancyID, compartmentID, op, entityType, action, resourceID, uri string, now time.Time) *core.WorkRequest {
	return &core.WorkRequest{
		ID:            NewOCID(OCIDWorkRequest),
		TenancyID:     tenancyID,
		CompartmentID: compartmentID,
		OperationType: op,
		Status:        core.WorkRequestAccepted,
		Resources:     []core.WorkRequestResource{{EntityType: entityType, ActionType: action, Identifier: resourceID, EntityURI: uri}},
		TimeAccepted:  now,
		TimeUpdated:   now,
	}
}

// JobID is the ID of the job of kind acting on a resource: each resource
// has at most one job of each kind, so the ID is derived, and a worker can
// find, for example, a model's fine-tuning job from the model's OCID.
func JobID(kind, resourceID string) string { return kind + ":" + resourceID }

// JobPayload is the JSON payload of every job the API enqueues.
type JobPayload struct {
	// OpcRequestID is the opc-request-id of the request that queued the
	// job, so that the worker's logs can be matched to it.
	OpcRequestID string `json:"opcRequestId,omitempty"`
}

// newJob returns a queued job of kind for a resource and its work
// request, its payload naming ctx's request id.
func newJob(ctx context.Context, kind, queue, tenancyID, resourceID, workRequestID string, now time.Time) *core.Job {
	payload, _ := json.Marshal(JobPayload{OpcRequestID: RequestID(ctx)}) // a struct of strings always encodes
	return &core.Job{
		ID:            JobID(kind, resourceID),
		Kind:          kind,
		Queue:         queue,
		ResourceID:    resourceID,
		WorkRequestID: workRequestID,
		TenancyID:     tenancyID,
		State:         core.JobQueued,
		Payload:       payload,
		TimeCreated:   now,
		TimeUpdated:   now,
	}
}

func (s *Server) notify() {
	if s.Notify != nil {
		s.Notify()
	}
}

// writeResource answers 200 with v, its etag and the extra headers.
func writeResource(w http.ResponseWriter, status int, v any, etag string, headers ...string) {
	if etag != "" {
		w.Header().Set(HeaderETag, etag)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	WriteJSON(w, status, v)
}

// writeNextPage sets opc-next-page when there is a next page.
func writeNextPage(w http.ResponseWriter, next string) {
	if next != "" {
		w.Header().Set(HeaderNextPage, next)
	}
}

// validTags checks freeform and defined tags' sizes.
func validTags(freeform map[string]string, defined map[string]map[string]any) error {
	if len(freeform) > 64 {
		return BadRequest("freeformTags: at most 64 tags, got %d", len(freeform))
	}
	for k, v := range freeform {
		if k == "" || len(k) > 100 {
			return BadRequest("freeformTags: keys must be 1 to 100 characters, got %q", k)
		}
		if len(v) > 256 {
			return BadRequest("freeformTags[%q]: values must be at most 256 characters", k)
		}
	}
	if len(defined) > 64 {
		return BadRequest("definedTags: at most 64 namespaces, got %d", len(defined))
	}
	for ns := range defined {
		if ns == "" || len(ns) > 100 {
			return BadRequest("definedTags: namespace names must be 1 to 100 characters, got %q", ns)
		}
	}
	return nil
}

// validName checks a displayName-like string field.
func validName(field, v string, max int) error {
	if len(v) > max {
		return BadRequest("%s must be at most %d characters, got %d", field, max, len(v))
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return BadRequest("%s must not contain control characters", field)
		}
	}
	return nil
}

// checkIfMatch answers 412 when the request's if-match names an etag other
// than etag, the resource's current one; kind names the resource.
func checkIfMatch(r *http.Request, etag, kind string) error {
	if ifm := ifMatch(r); ifm != "" && ifm != etag {
		return PreconditionFailed("if-match %q does not match the %s's etag", ifm, kind)
	}
	return nil
}

// ifMatch returns the request's if-match etag; "*" (any) counts as none.
func ifMatch(r *http.Request) string {
	v := r.Header.Get(HeaderIfMatch)
	if v == "*" {
		return ""
	}
	return v
}
