package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a JSON request body; larger bodies are a 400.
const MaxBodyBytes = 1 << 20

// WriteJSON answers status with v as the JSON body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		WriteError(w, nil, http.StatusInternalServerError, CodeInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// ReadBody reads a request body of at most MaxBodyBytes.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, BadRequest("read request body: %v", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, BadRequest("request body is larger than %d bytes", MaxBodyBytes)
	}
	return b, nil
}

// DecodeJSON decodes body into v, rejecting fields v does not have and
// trailing data, with a 400 whose message names the problem.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{http.StatusBadRequest, CodeMissingParameter, "request body is required"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			if ute.Field == "" {
				return &Error{http.StatusBadRequest, CodeInvalidParameter, fmt.Sprintf("expected a JSON object, got JSON %s", ute.Value)}
			}
			return &Error{http.StatusBadRequest, CodeInvalidParameter, fmt.Sprintf("%s: expected %s, got JSON %s", ute.Field, jsonKind(ute.Type.Kind().String()), ute.Value)}
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return &Error{http.StatusBadRequest, CodeInvalidParameter, "request body: " + strings.TrimPrefix(err.Error(), "json: ") + " is not accepted by this operation"}
		}
		return &Error{http.StatusBadRequest, CodeCannotParseRequest, "request body: " + err.Error()}
	}
	if dec.More() {
		return &Error{http.StatusBadRequest, CodeCannotParseRequest, "request body: trailing data after the JSON value"}
	}
	return nil
}

// jsonKind names a Go kind as a JSON type, for messages.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int64", "int32":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "a value"
	}
	return kind
}
