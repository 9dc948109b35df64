// Package store is Gantry's persistence: one interface, Store, with a
// driver per database in a subpackage (sqlite, postgres) and versioned SQL
// migrations embedded in the binary. Every state change is committed
// before the call returns, so a restart loses nothing. The shared test
// suite in storetest runs against every driver.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/gantryml/gantry/internal/core"
)

// Errors callers branch on. Drivers wrap them with context; test with errors.Is.
var (
	// ErrNotFound: no row with that key (or not visible to the tenancy).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key exists already (for example a custom
	// model's displayName and version in one tenancy).
	ErrConflict = errors.New("conflict")
	// ErrPrecondition: the row's ETag is not the one the caller expected.
	ErrPrecondition = errors.New("etag mismatch")
	// ErrInvalidPage: a ListQuery's Page is not a token the store made for
	// that sort order, or its SortBy is not supported by the list.
	ErrInvalidPage = errors.New("invalid page token or sort order")
)

// Store is a database holding Gantry's state. It is safe for concurrent use.
type Store interface {
	Tx
	// InTx runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise. The Tx must not be used after fn returns, and
	// fn must use only the Tx, never the Store: on SQLite, whose single
	// writer fn's transaction holds, a write through the Store would wait
	// for fn forever (until its context ends).
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Close releases the database.
	Close() error
}

// Tx is every operation of the store; Store runs each in its own
// transaction, InTx groups several into one.
type Tx interface {
	Identities
	Models
	Clusters
	WorkRequests
	RetryTokens
	Jobs
}

// Identities holds tenancies, users, API keys and compartments.
type Identities interface {
	CreateTenancy(ctx context.Context, t *core.Tenancy) error
	GetTenancy(ctx context.Context, id string) (*core.Tenancy, error)
	// GetTenancyByNamespace finds the tenancy owning an object storage namespace.
	GetTenancyByNamespace(ctx context.Context, namespace string) (*core.Tenancy, error)
	ListTenancies(ctx context.Context) ([]*core.Tenancy, error)
	// ClaimBootstrap records, once per database, that the deployment's
	// first tenancy is tenancyID (created at at), and reports whether
	// this call made the claim; false means a claim exists. Call it in
	// the InTx that creates that tenancy: a concurrent claimer waits
	// until the transaction ends, so servers starting at once on an
	// empty database create exactly one tenancy between them.
	ClaimBootstrap(ctx context.Context, tenancyID string, at time.Time) (bool, error)
	CreateUser(ctx context.Context, u *core.User) error
	GetUser(ctx context.Context, id string) (*core.User, error)
	ListUsers(ctx context.Context, tenancyID string) ([]*core.User, error)
	AddAPIKey(ctx context.Context, k *core.APIKey) error
	// GetAPIKey finds a key by the keyId triple of a request signature.
	GetAPIKey(ctx context.Context, tenancyID, userID, fingerprint string) (*core.APIKey, error)
	CreateCompartment(ctx context.Context, c *core.Compartment) error
	GetCompartment(ctx context.Context, id string) (*core.Compartment, error)
	ListCompartments(ctx context.Context, tenancyID string) ([]*core.Compartment, error)
}

// ListQuery filters, sorts and pages a list. Zero fields do not filter.
type ListQuery struct {
	TenancyID     string // required for tenancy-owned resources
	CompartmentID string
	ID            string
	DisplayName   string
	// LifecycleState filters by state; when empty, DELETED resources are
	// hidden, as OCI hides them unless asked for that state.
	LifecycleState string
	Vendor         string // models
	Capability     string // models: has this capability
	// Capabilities (models) keeps only models having every one of them,
	// as well as Capability.
	Capabilities []string
	// IncludeBase adds BASE models (which belong to no tenancy) to a model
	// list, whatever TenancyID and CompartmentID say.
	IncludeBase bool
	// SortBy is "timeCreated" (the default; "timeAccepted" is the same
	// for work requests), "displayName" (models, clusters) or
	// "lifecycleState" (models, clusters); ties sort by ID. Any other
	// value is ErrInvalidPage.
	SortBy   string
	SortDesc bool
	Limit    int    // 0: the driver's default (100); at most 1000
	Page     string // the Next of the previous page; opaque
}

// LogQuery pages a work request's logs or errors: in the order they were
// appended, or newest first when Desc is set (over the whole list, not
// within a page). A Page token is valid only for the Desc it was made with.
type LogQuery struct {
	Limit int    // 0: the driver's default (100); at most 1000
	Page  string // the Next of the previous page; opaque
	Desc  bool
}

// Page is one page of a list; Next is "" on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// Models holds base and custom models. Insert and Update assign a new ETag
// and TimeUpdated to the value passed in.
type Models interface {
	// InsertModel fails with ErrConflict when a model of the same tenancy
	// has the same DisplayName and Version (DELETED models excluded).
	InsertModel(ctx context.Context, m *core.Model) error
	// UpsertBaseModel inserts or replaces a catalog model, keyed by ID.
	UpsertBaseModel(ctx context.Context, m *core.Model) error
	GetModel(ctx context.Context, id string) (*core.Model, error)
	// UpdateModel replaces the stored model; ifMatch, when not empty, must
	// equal the stored ETag, or ErrPrecondition. ErrConflict as InsertModel.
	UpdateModel(ctx context.Context, m *core.Model, ifMatch string) error
	ListModels(ctx context.Context, q ListQuery) (Page[*core.Model], error)
}

// Clusters holds dedicated AI clusters; ETags as Models.
type Clusters interface {
	InsertCluster(ctx context.Context, c *core.Cluster) error
	GetCluster(ctx context.Context, id string) (*core.Cluster, error)
	UpdateCluster(ctx context.Context, c *core.Cluster, ifMatch string) error
	ListClusters(ctx context.Context, q ListQuery) (Page[*core.Cluster], error)
}

// WorkRequests holds work requests with their logs and errors, in the
// order they were appended.
type WorkRequests interface {
	InsertWorkRequest(ctx context.Context, w *core.WorkRequest) error
	GetWorkRequest(ctx context.Context, id string) (*core.WorkRequest, error)
	UpdateWorkRequest(ctx context.Context, w *core.WorkRequest) error
	// ListWorkRequests filters by TenancyID, CompartmentID, ID and
	// LifecycleState (the status), and by resource when ResourceID is set.
	ListWorkRequests(ctx context.Context, q ListQuery, resourceID string) (Page[*core.WorkRequest], error)
	AppendWorkRequestLog(ctx context.Context, workRequestID string, l core.WorkRequestLog) error
	ListWorkRequestLogs(ctx context.Context, workRequestID string, q LogQuery) (Page[core.WorkRequestLog], error)
	AppendWorkRequestError(ctx context.Context, workRequestID string, e core.WorkRequestError) error
	ListWorkRequestErrors(ctx context.Context, workRequestID string, q LogQuery) (Page[core.WorkRequestError], error)
}

// RetryTokens remembers idempotent creates.
type RetryTokens interface {
	// GetRetryToken returns the token stored within the last 24 hours, or ErrNotFound.
	GetRetryToken(ctx context.Context, tenancyID, token string, now time.Time) (*core.RetryToken, error)
	// PutRetryToken stores a token; ErrConflict when it exists already.
	PutRetryToken(ctx context.Context, t *core.RetryToken) error
	// PurgeRetryTokens deletes the tokens stored 24 hours or more before
	// now (those GetRetryToken no longer returns) and returns how many.
	PurgeRetryTokens(ctx context.Context, now time.Time) (int, error)
}

// Jobs is the durable job queue. A queue's concurrency is set with
// SetQueueConcurrency (a fine-tuning cluster's unitCount) and read at
// claim time, so a change applies to the next claim.
type Jobs interface {
	EnqueueJob(ctx context.Context, j *core.Job) error
	GetJob(ctx context.Context, id string) (*core.Job, error)
	// GetJobByResource returns the newest job acting on a resource.
	GetJobByResource(ctx context.Context, resourceID string) (*core.Job, error)
	SetQueueConcurrency(ctx context.Context, queue string, n int) error
	// ClaimJob takes the oldest queued job (or a running one whose lease
	// expired before now) of a queue that runs fewer jobs than its
	// concurrency, marks it running with owner and lease until now+lease,
	// increments its Attempt and returns it; ErrNotFound when none is ready.
	ClaimJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (*core.Job, error)
	// ExtendLease renews a running job's lease; ErrNotFound when owner no longer holds it.
	ExtendLease(ctx context.Context, id, owner string, until time.Time) error
	// FinishJob sets a terminal state (succeeded, failed, canceled) and the error text.
	FinishJob(ctx context.Context, id, owner, state, errText string) error
	// RequestCancel flags a job for cancellation; a queued job is canceled at once.
	RequestCancel(ctx context.Context, id string) (*core.Job, error)
	// ReleaseJob puts a running job back to queued (graceful shutdown), keeping its Attempt.
	ReleaseJob(ctx context.Context, id, owner string) error
	// ExpireJobLeases ends the leases of the running jobs held by owner,
	// a worker the caller has proved dead, so that the next ClaimJob
	// takes them at once (as a new attempt) instead of after the lease.
	// It returns how many jobs it changed.
	ExpireJobLeases(ctx context.Context, owner string) (int, error)
	// PurgeJobs deletes the jobs that ended (succeeded, failed or
	// canceled) before before, by the time of their last change, and
	// returns how many. Queued and running jobs stay whatever their age;
	// work requests, with their logs and errors, are not touched.
	PurgeJobs(ctx context.Context, before time.Time) (int, error)
	// CountJobs counts a queue's jobs in the given states ("" queue: all queues).
	CountJobs(ctx context.Context, queue string, states ...string) (int, error)
}
