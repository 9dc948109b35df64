// Package api serves the OCI Generative AI management API (models,
// dedicated AI clusters, work requests) under /20231130, with OCI's
// conventions: JSON bodies, {"code","message"} errors, opc-request-id,
// etag and if-match, opc-retry-token, limit/page paging. It reads and
// writes state through store.Store and queues background work as jobs;
// the handlers never block on that work.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/store"
)

// APIVersion is the path prefix of every Generative AI operation.
const APIVersion = "/20231130"

// CallerFunc reports the authenticated tenancy and user of a request, as
// the auth middleware put them in its context.
type CallerFunc func(ctx context.Context) (tenancyID, userID string, ok bool)

// ObjectChecker reports whether an object exists and the tenancy may read
// it, so that CreateModel can reject a dataset that is not there. It
// returns an error wrapping ErrObjectNotFound when the namespace (or the
// tenancy's access to it), the bucket or the object does not exist.
type ObjectChecker interface {
	ObjectExists(ctx context.Context, tenancyID, namespace, bucket, object string) error
}

// ErrObjectNotFound is what an ObjectChecker wraps for a missing object.
var ErrObjectNotFound = errors.New("object not found")

// Server is the Generative AI API. Store and Caller are required; the
// other fields have working zero values.
type Server struct {
	Store store.Store
	// Caller finds the authenticated principal of a request.
	Caller CallerFunc
	// Objects checks that a dataset object exists; nil skips the check.
	Objects ObjectChecker
	// Logger receives one line per failed request; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BaseModelLayers reports a base model's layer count, for the range of
	// numOfLastLayers; nil or false means unknown (only >= 1 is checked).
	BaseModelLayers func(baseModelID string) (int, bool)
	// Notify is called after a job is queued, to wake the workers; may be nil.
	Notify func()
}

// Handler returns the API's routes, all under APIVersion.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rt := &router{s: s, mux: mux, allowed: map[string][]string{}}
	s.routes(rt)
	// Every operation path answers other methods with OCI's JSON 405,
	// not the mux's plain-text one.
	for path, methods := range rt.allowed {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(APIVersion+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			WriteError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, http.StatusNotFound, CodeNotAuthorizedOrNotFound, "no operation at "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// router registers operations on a mux and remembers each path's methods.
type router struct {
	s       *Server
	mux     *http.ServeMux
	allowed map[string][]string
}

// handle registers an operation: pattern is "METHOD /path" below
// APIVersion, op the operation's SDK name (for metrics and logs).
func (rt *router) handle(pattern, op string, h func(w http.ResponseWriter, r *http.Request) error) {
	method, path, _ := cutSpace(pattern)
	rt.allowed[path] = append(rt.allowed[path], method)
	s := rt.s
	rt.mux.HandleFunc(method+" "+APIVersion+path, func(w http.ResponseWriter, r *http.Request) {
		SetOperation(r.Context(), op)
		if err := h(w, r); err != nil {
			s.writeErr(w, r, op, err)
		}
	})
}

func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return "", s, false
}

// writeErr maps a handler's error to an OCI error answer: *Error as is,
// store sentinels to their codes, anything else a 500.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, op string, err error) {
	var ae *Error
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrNotFound):
		ae = NotFound("resource not found or not authorized")
	case errors.Is(err, store.ErrPrecondition):
		ae = PreconditionFailed("if-match does not match the resource's current etag")
	case errors.Is(err, store.ErrInvalidPage):
		ae = BadRequest("page: not a page token of this list and sort order")
	case errors.Is(err, store.ErrConflict):
		ae = Conflict("%v", err)
	case errors.Is(err, context.Canceled):
		ae = &Error{http.StatusServiceUnavailable, CodeServiceUnavailable, "request canceled"}
	default:
		s.logger().ErrorContext(r.Context(), "request failed", "op", op, "err", err, "request_id", RequestID(r.Context()))
		ae = &Error{http.StatusInternalServerError, CodeInternalServerError, "internal error; request id " + RequestID(r.Context())}
	}
	WriteError(w, r, ae.Status, ae.Code, ae.Message)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

type opSlotKey struct{}

type opSlot struct{ name string }

// WithOperationSlot returns ctx with room for the operation name that the
// router records (SetOperation), so middleware outside the router (metrics,
// logs) can read it after the handler returns with Operation.
func WithOperationSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, opSlotKey{}, &opSlot{})
}

// SetOperation records the operation name in ctx's slot, if it has one.
func SetOperation(ctx context.Context, name string) {
	if s, ok := ctx.Value(opSlotKey{}).(*opSlot); ok {
		s.name = name
	}
}

// Operation returns the recorded operation name, or "".
func Operation(ctx context.Context) string {
	if s, ok := ctx.Value(opSlotKey{}).(*opSlot); ok {
		return s.name
	}
	return ""
}
