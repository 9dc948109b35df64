// Package auth verifies the OCI HTTP Signatures that every OCI SDK puts on
// its requests, and manages the keys behind them: fingerprints, key
// generation, OCI config files, the first-start bootstrap of a data
// directory, and a request signer for tests.
//
// A request is signed with an RSA key whose keyId is
// "tenancyOCID/userOCID/fingerprint"; the server finds the public key by
// that triple (KeyStore) and checks the RSA-SHA256 (PKCS#1 v1.5) signature
// over the signed headers, the clock (5 minutes either way) and, when the
// client signed it, the SHA-256 of the body.
package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	TenancyID string
	UserID    string
}

type callerKey struct{}

// WithCaller returns a context carrying p as the request's caller.
func WithCaller(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, callerKey{}, p)
}

// Caller returns the principal that Middleware put in the context; false
// when the request was not authenticated.
func Caller(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(callerKey{}).(Principal)
	return p, ok
}

// KeyStore finds the API key named by a signature's keyId. store.Store
// satisfies it. It returns an error wrapping store.ErrNotFound when there is
// no such key.
type KeyStore interface {
	GetAPIKey(ctx context.Context, tenancyID, userID, fingerprint string) (*core.APIKey, error)
}

// ErrBodyHashMismatch is returned by the body reader of a request whose
// signed x-content-sha256 does not match the bytes read, at the end of the
// body. Handlers that stream a body (object uploads) must discard what they
// read and answer 401 when they see it (errors.Is).
var ErrBodyHashMismatch = errors.New("request body does not match the signed x-content-sha256")

// MaxClockSkew is how far a request's date may be from the server's clock.
const MaxClockSkew = 5 * time.Minute

// maxBufferedBody is the largest signed body that is read and checked
// before the handler runs; larger ones are checked while streaming.
const maxBufferedBody = 4 << 20

// Verifier checks request signatures. The zero value is not usable: Keys
// must be set. It is safe for concurrent use.
type Verifier struct {
	// Keys finds public keys by keyId.
	Keys KeyStore
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnError writes a failure; nil writes OCI's error JSON
	// {"code": code, "message": msg} with the status itself.
	OnError func(w http.ResponseWriter, r *http.Request, status int, code, msg string)
	// BodyExempt reports requests whose body the SDKs send unsigned (the
	// Object Storage PutObject and UploadPart operations); nil means
	// ObjectStorageBodyExempt.
	BodyExempt func(r *http.Request) bool
	// Logger receives one debug line per rejected request; nil: slog.Default().
	Logger *slog.Logger
}

// Middleware verifies the signature of every request with keys and the
// clock now (nil: time.Now) and calls next with the caller in the context
// (see Caller). A missing or wrong signature is answered 401
// NotAuthenticated with OCI's error JSON.
func Middleware(keys KeyStore, now func() time.Time, next http.Handler) http.Handler {
	v := &Verifier{Keys: keys, Now: now}
	return v.Wrap(next)
}

// Wrap returns a handler that verifies each request before calling next.
func (v *Verifier) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, status, msg := v.Verify(r)
		if status != 0 {
			code := "NotAuthenticated"
			if status == http.StatusInternalServerError {
				code = "InternalServerError"
			}
			v.logger().Debug("request not authenticated", "method", r.Method, "path", r.URL.Path, "reason", msg)
			v.writeError(w, r, status, code, msg)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), p)))
	})
}

func (v *Verifier) logger() *slog.Logger {
	if v.Logger != nil {
		return v.Logger
	}
	return slog.Default()
}

func (v *Verifier) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if v.OnError != nil {
		v.OnError(w, r, status, code, msg)
		return
	}
	WriteErrorJSON(w, status, code, msg)
}

// WriteErrorJSON writes OCI's error body {"code", "message"} with status.
func WriteErrorJSON(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}

// ObjectStorageBodyExempt reports whether r is an Object Storage PutObject
// (PUT /n/{ns}/b/{bucket}/o/{object}) or UploadPart (PUT
// /n/{ns}/b/{bucket}/u/{object}) request, whose bodies the OCI SDKs do not
// sign.
func ObjectStorageBodyExempt(r *http.Request) bool {
	if r.Method != http.MethodPut {
		return false
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 6)
	return len(parts) == 6 && parts[0] == "n" && parts[2] == "b" && (parts[4] == "o" || parts[4] == "u") && parts[5] != ""
}

// Verify checks r's signature. It returns the caller, or a status (401 or
// 500) and a message saying what is wrong. When the body hash is signed,
// Verify checks small bodies at once and replaces r.Body of large ones by
// a reader that fails with ErrBodyHashMismatch at the end.
func (v *Verifier) Verify(r *http.Request) (Principal, int, string) {
	fail := func(format string, args ...any) (Principal, int, string) {
		return Principal{}, http.StatusUnauthorized, "The required information to complete authentication was not provided or was incorrect: " + fmt.Sprintf(format, args...)
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return fail("missing Authorization header")
	}
	params, err := ParseAuthorization(authz)
	if err != nil {
		return fail("%v", err)
	}
	if ver, ok := params["version"]; ok && ver != "1" {
		return fail("unsupported signature version %q", ver)
	}
	if alg := strings.ToLower(params["algorithm"]); alg != "rsa-sha256" {
		return fail("unsupported signature algorithm %q (want rsa-sha256)", params["algorithm"])
	}
	keyID := params["keyId"]
	ids := strings.Split(keyID, "/")
	if len(ids) != 3 || ids[0] == "" || ids[1] == "" || ids[2] == "" {
		return fail("keyId %q is not tenancy/user/fingerprint", keyID)
	}
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil || len(sig) == 0 {
		return fail("signature is not base64")
	}
	headersParam, ok := params["headers"]
	if !ok {
		headersParam = "date"
	}
	signed := strings.Fields(strings.ToLower(headersParam))
	has := make(map[string]bool, len(signed))
	for _, h := range signed {
		has[h] = true
	}
	for _, h := range []string{"(request-target)", "host"} {
		if !has[h] {
			return fail("header %q is not signed", h)
		}
	}
	dateHeader := "x-date"
	if !has["x-date"] {
		if !has["date"] {
			return fail("neither date nor x-date is signed")
		}
		dateHeader = "date"
	}
	bodyMethod := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch
	exempt := v.BodyExempt
	if exempt == nil {
		exempt = ObjectStorageBodyExempt
	}
	if bodyMethod && !exempt(r) {
		for _, h := range []string{"x-content-sha256", "content-type", "content-length"} {
			if !has[h] {
				return fail("header %q is not signed", h)
			}
		}
	}

	date, err := http.ParseTime(r.Header.Get(dateHeader))
	if err != nil {
		return fail("%s header %q is not an HTTP date", dateHeader, r.Header.Get(dateHeader))
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(date); d > MaxClockSkew || d < -MaxClockSkew {
		return fail("%s %s is more than %v from the server's clock", dateHeader, date.UTC().Format(time.RFC1123), MaxClockSkew)
	}

	signingString, err := SigningString(r, signed)
	if err != nil {
		return fail("%v", err)
	}
	key, err := v.Keys.GetAPIKey(r.Context(), ids[0], ids[1], ids[2])
	if errors.Is(err, store.ErrNotFound) {
		return fail("no API key %q", keyID)
	}
	if err != nil {
		return Principal{}, http.StatusInternalServerError, fmt.Sprintf("look up API key: %v", err)
	}
	pub, err := ParsePublicKeyPEM([]byte(key.PublicKeyPEM))
	if err != nil {
		return Principal{}, http.StatusInternalServerError, fmt.Sprintf("stored key %q: %v", keyID, err)
	}
	digest := sha256.Sum256([]byte(signingString))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return fail("signature does not verify with key %q", keyID)
	}

	if has["x-content-sha256"] {
		want, err := base64.StdEncoding.DecodeString(r.Header.Get("x-content-sha256"))
		if err != nil || len(want) != sha256.Size {
			return fail("x-content-sha256 is not a base64 SHA-256")
		}
		if msg := checkBody(r, want); msg != "" {
			return fail("%s", msg)
		}
	}
	return Principal{TenancyID: key.TenancyID, UserID: key.UserID}, 0, ""
}

// checkBody checks r's body against the SHA-256 want: small bodies now
// (an empty message when they match), larger ones while they are read.
func checkBody(r *http.Request, want []byte) string {
	if r.Body == nil || r.Body == http.NoBody {
		got := sha256.Sum256(nil)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return "x-content-sha256 does not match the empty body"
		}
		return ""
	}
	if r.ContentLength >= 0 && r.ContentLength <= maxBufferedBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
		if err != nil {
			return fmt.Sprintf("read body: %v", err)
		}
		r.Body.Close()
		got := sha256.Sum256(body)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return "x-content-sha256 does not match the body"
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		return ""
	}
	r.Body = &hashingBody{rc: r.Body, h: sha256.New(), want: want}
	return ""
}

// hashingBody passes a body through, hashing it, and fails the final read
// with ErrBodyHashMismatch when the hash is not the signed one.
type hashingBody struct {
	rc   io.ReadCloser
	h    hash.Hash
	want []byte
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && subtle.ConstantTimeCompare(b.h.Sum(nil), b.want) != 1 {
		return n, ErrBodyHashMismatch
	}
	return n, err
}

func (b *hashingBody) Close() error { return b.rc.Close() }

// SigningString builds the string a signature covers, from the lower-case
// header names of the signature's headers parameter: "(request-target)" is
// the lower-case method and the request URI as sent, "host" the Host
// header, others the request's header values, one "name: value" per line.
func SigningString(r *http.Request, headers []string) (string, error) {
	var b strings.Builder
	for i, h := range headers {
		var val string
		switch h {
		case "(request-target)":
			uri := r.RequestURI
			if uri == "" {
				uri = r.URL.RequestURI()
			}
			val = strings.ToLower(r.Method) + " " + uri
		case "host":
			val = r.Host
			if val == "" {
				val = r.URL.Host
			}
		default:
			vals, ok := r.Header[http.CanonicalHeaderKey(h)]
			switch {
			case ok && len(vals) > 0:
				val = vals[0]
			case h == "content-length" && r.ContentLength >= 0:
				val = strconv.FormatInt(r.ContentLength, 10)
			default:
				return "", fmt.Errorf("signed header %q is missing from the request", h)
			}
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(h)
		b.WriteString(": ")
		b.WriteString(val)
	}
	return b.String(), nil
}

// ParseAuthorization parses an Authorization header of the form
// `Signature k1="v1",k2="v2"` into its parameters.
func ParseAuthorization(h string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(h, "Signature ")
	if !ok {
		return nil, errors.New(`Authorization header does not start with "Signature "`)
	}
	params := make(map[string]string)
	for {
		rest = strings.TrimLeft(rest, " ,")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("malformed Authorization parameter %q", rest)
		}
		key := strings.TrimSpace(rest[:eq])
		rest = rest[eq+1:]
		if !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("Authorization parameter %s is not quoted", key)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, fmt.Errorf("Authorization parameter %s is not terminated", key)
		}
		if _, dup := params[key]; dup {
			return nil, fmt.Errorf("Authorization parameter %s appears twice", key)
		}
		params[key] = rest[1 : 1+end]
		rest = rest[2+end:]
	}
	for _, k := range []string{"keyId", "signature"} {
		if params[k] == "" {
			return nil, fmt.Errorf("Authorization header has no %s", k)
		}
	}
	return params, nil
}
