package api

import (
	"encoding/json"
	"net/http"
)

// OCI error codes, as the service answers them in the "code" field of an
// error body. Each goes with the HTTP status named in its comment.
const (
	CodeInvalidParameter        = "InvalidParameter"        // 400
	CodeMissingParameter        = "MissingParameter"        // 400
	CodeCannotParseRequest      = "CannotParseRequest"      // 400
	CodeNotAuthenticated        = "NotAuthenticated"        // 401
	CodeNotAuthorizedOrNotFound = "NotAuthorizedOrNotFound" // 404
	CodeMethodNotAllowed        = "MethodNotAllowed"        // 405
	CodeIncorrectState          = "IncorrectState"          // 409
	CodeConflict                = "Conflict"                // 409
	CodePreconditionFailed      = "PreconditionFailed"      // 412
	CodeTooManyRequests         = "TooManyRequests"         // 429
	CodeInternalServerError     = "InternalServerError"     // 500
	CodeServiceUnavailable      = "ServiceUnavailable"      // 503
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError answers an error as OCI services do: the status, a JSON body
// {"code": code, "message": message}, and the request's opc-request-id
// (set here too when no middleware has set it).
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	h := w.Header()
	if h.Get(HeaderRequestID) == "" && r != nil {
		id := RequestID(r.Context())
		if id == "" {
			id = r.Header.Get(HeaderRequestID)
		}
		if id == "" {
			id = newRequestID()
		}
		h.Set(HeaderRequestID, id)
	}
	h.Set("Content-Type", "application/json")
	h.Del("Etag")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Code: code, Message: message})
}

// Error is an API error a handler returns: the status, the OCI code and
// the message written back to the client.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the code and the message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// BadRequest is a 400 InvalidParameter error.
func BadRequest(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, CodeInvalidParameter, sprintf(format, args...)}
}

// Missing is a 400 MissingParameter error for the named field.
func Missing(field string) *Error {
	return &Error{http.StatusBadRequest, CodeMissingParameter, field + " is required"}
}

// NotFound is a 404 NotAuthorizedOrNotFound error.
func NotFound(format string, args ...any) *Error {
	return &Error{http.StatusNotFound, CodeNotAuthorizedOrNotFound, sprintf(format, args...)}
}

// IncorrectState is a 409 IncorrectState error.
func IncorrectState(format string, args ...any) *Error {
	return &Error{http.StatusConflict, CodeIncorrectState, sprintf(format, args...)}
}

// Conflict is a 409 Conflict error.
func Conflict(format string, args ...any) *Error {
	return &Error{http.StatusConflict, CodeConflict, sprintf(format, args...)}
}

// PreconditionFailed is a 412 PreconditionFailed error.
func PreconditionFailed(format string, args ...any) *Error {
	return &Error{http.StatusPreconditionFailed, CodePreconditionFailed, sprintf(format, args...)}
}
