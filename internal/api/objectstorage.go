package api

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/store"
)

// ObjectStorageHandler serves the Object Storage API subset that datasets
// and model artifacts need, on OCI's paths below /n/: GetNamespace, bucket
// create/get/head/list/delete, object put/get/head/delete/list, and
// multipart uploads (create, upload part, list parts, commit, abort).
// Requests must carry an authenticated caller (auth.Caller); the only
// namespace a caller sees is its tenancy's, any other is 404
// NotAuthorizedOrNotFound.
type ObjectStorageHandler struct {
	Objects *objectstore.Store
	IDs     store.Identities
}

// NewObjectStorageHandler returns the Object Storage API over objs, with
// tenancies and compartments from ids.
func NewObjectStorageHandler(objs *objectstore.Store, ids store.Identities) http.Handler {
	return &ObjectStorageHandler{Objects: objs, IDs: ids}
}

// osRequest is a parsed Object Storage path.
type osRequest struct {
	ns, bucket, kind, object string // kind: "", "o" or "u"
	tenancy                  *core.Tenancy
	caller                   auth.Principal
}

// ServeHTTP answers one Object Storage request, with OCI's error codes
// (BucketNotFound, ObjectNotFound, BucketAlreadyExists, BucketNotEmpty,
// IfMatchFailed, UnmatchedContentMD5, ...) on failure.
func (h *ObjectStorageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Object Storage answers echo the client's request id.
	if id := r.Header.Get("opc-client-request-id"); id != "" && len(id) <= 256 && !strings.ContainsAny(id, "\r\n") {
		w.Header().Set("opc-client-request-id", id)
	}
	q, err := h.parse(r)
	if err == nil {
		err = h.route(w, r, q)
	}
	if err != nil {
		osWriteErr(w, r, q, err)
	}
}

// parse splits /n/{ns}/b/{bucket}/{o|u}/{object} (each part optional from
// the right; trailing slashes allowed) and checks the caller owns ns.
func (h *ObjectStorageHandler) parse(r *http.Request) (osRequest, error) {
	var q osRequest
	p, ok := auth.Caller(r.Context())
	if !ok {
		return q, &Error{http.StatusUnauthorized, CodeNotAuthenticated, "request is not authenticated"}
	}
	q.caller = p
	t, err := h.IDs.GetTenancy(r.Context(), p.TenancyID)
	if err != nil {
		return q, fmt.Errorf("caller's tenancy: %w", err)
	}
	q.tenancy = t
	segs := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/", 6)
	unesc := func(i int) (string, error) {
		v, err := url.PathUnescape(segs[i])
		if err != nil {
			return "", BadRequest("path segment %q is not URL-escaped correctly", segs[i])
		}
		return v, nil
	}
	if len(segs) == 0 || segs[0] != "n" {
		return q, NotFound("no operation at %s", r.URL.Path)
	}
	if len(segs) < 2 || segs[1] == "" {
		return q, nil // GetNamespace
	}
	if q.ns, err = unesc(1); err != nil {
		return q, err
	}
	if q.ns != t.Namespace {
		return q, NotFound("Either the namespace %q does not exist or you are not authorized to access it", q.ns)
	}
	if len(segs) < 3 || segs[2] == "" {
		return q, NotFound("no operation at %s", r.URL.Path)
	}
	if segs[2] != "b" {
		return q, NotFound("no operation at %s", r.URL.Path)
	}
	if len(segs) < 4 || segs[3] == "" {
		return q, nil // bucket collection
	}
	if q.bucket, err = unesc(3); err != nil {
		return q, err
	}
	if len(segs) < 5 || segs[4] == "" {
		return q, nil // one bucket
	}
	q.kind = segs[4]
	if q.kind != "o" && q.kind != "u" {
		return q, NotFound("no operation at %s", r.URL.Path)
	}
	if len(segs) == 6 && segs[5] != "" {
		if q.object, err = unesc(5); err != nil {
			return q, err
		}
	}
	return q, nil
}

func (h *ObjectStorageHandler) route(w http.ResponseWriter, r *http.Request, q osRequest) error {
	ctx := r.Context()
	m := r.Method
	op := func(name string) { SetOperation(ctx, name) }
	switch {
	case q.ns == "":
		if m == http.MethodGet {
			op("GetNamespace")
			WriteJSON(w, http.StatusOK, q.tenancy.Namespace)
			return nil
		}
	case q.bucket == "":
		switch m {
		case http.MethodPost:
			op("CreateBucket")
			return h.createBucket(w, r, q)
		case http.MethodGet:
			op("ListBuckets")
			return h.listBuckets(w, r, q)
		}
	case q.kind == "":
		switch m {
		case http.MethodGet, http.MethodHead:
			if m == http.MethodGet {
				op("GetBucket")
			} else {
				op("HeadBucket")
			}
			return h.getBucket(w, r, q)
		case http.MethodDelete:
			op("DeleteBucket")
			if err := h.Objects.DeleteBucket(ctx, q.ns, q.bucket, r.Header.Get("if-match")); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	case q.kind == "o" && q.object == "":
		if m == http.MethodGet {
			op("ListObjects")
			return h.listObjects(w, r, q)
		}
	case q.kind == "o":
		switch m {
		case http.MethodPut:
			op("PutObject")
			return h.putObject(w, r, q)
		case http.MethodGet, http.MethodHead:
			if m == http.MethodGet {
				op("GetObject")
			} else {
				op("HeadObject")
			}
			return h.getObject(w, r, q)
		case http.MethodDelete:
			op("DeleteObject")
			if err := h.Objects.DeleteObject(ctx, q.ns, q.bucket, q.object, r.Header.Get("if-match")); err != nil {
				return err
			}
			w.Header().Set("last-modified", time.Now().UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	case q.kind == "u" && q.object == "":
		switch m {
		case http.MethodPost:
			op("CreateMultipartUpload")
			return h.createUpload(w, r, q)
		case http.MethodGet:
			op("ListMultipartUploads")
			return h.listUploads(w, r, q)
		}
	case q.kind == "u":
		uploadID := r.URL.Query().Get("uploadId")
		if uploadID == "" {
			return Missing("uploadId")
		}
		switch m {
		case http.MethodPut:
			op("UploadPart")
			return h.uploadPart(w, r, q, uploadID)
		case http.MethodPost:
			op("CommitMultipartUpload")
			return h.commitUpload(w, r, q, uploadID)
		case http.MethodDelete:
			op("AbortMultipartUpload")
			if err := h.Objects.AbortUpload(ctx, q.ns, q.bucket, q.object, uploadID); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		case http.MethodGet:
			op("ListMultipartUploadParts")
			return h.listParts(w, r, q, uploadID)
		}
	}
	return &Error{http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s is not supported on %s", m, r.URL.Path)}
}

// osTime formats a time as OCI's JSON does.
func osTime(t time.Time) string { return t.UTC().Format(timeFormat) }

type osBucketJSON struct {
	Namespace        string                    `json:"namespace"`
	Name             string                    `json:"name"`
	ID               string                    `json:"id,omitempty"`
	CompartmentID    string                    `json:"compartmentId"`
	CreatedBy        string                    `json:"createdBy"`
	TimeCreated      string                    `json:"timeCreated"`
	ETag             string                    `json:"etag"`
	Metadata         map[string]string         `json:"metadata,omitempty"`
	PublicAccessType string                    `json:"publicAccessType,omitempty"`
	StorageTier      string                    `json:"storageTier,omitempty"`
	FreeformTags     map[string]string         `json:"freeformTags"`
	DefinedTags      map[string]map[string]any `json:"definedTags"`
	Versioning       string                    `json:"versioning,omitempty"`
}

func toBucketJSON(b *objectstore.Bucket, summary bool) osBucketJSON {
	j := osBucketJSON{
		Namespace: b.Namespace, Name: b.Name, CompartmentID: b.CompartmentID, CreatedBy: b.CreatedBy,
		TimeCreated: osTime(b.TimeCreated), ETag: b.ETag,
		FreeformTags: b.FreeformTags, DefinedTags: b.DefinedTags,
	}
	if j.FreeformTags == nil {
		j.FreeformTags = map[string]string{}
	}
	if j.DefinedTags == nil {
		j.DefinedTags = map[string]map[string]any{}
	}
	if !summary {
		j.ID, j.Metadata, j.PublicAccessType, j.StorageTier, j.Versioning = b.ID, b.Metadata, b.PublicAccessType, b.StorageTier, "Disabled"
		if j.Metadata == nil {
			j.Metadata = map[string]string{}
		}
	}
	return j
}

// checkCompartment reports whether id is the tenancy (root compartment)
// or one of its compartments.
func (h *ObjectStorageHandler) checkCompartment(ctx context.Context, q osRequest, id string) error {
	if id == q.tenancy.ID {
		return nil
	}
	c, err := h.IDs.GetCompartment(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.TenancyID != q.tenancy.ID) {
		return NotFound("compartment %s does not exist or you are not authorized to access it", id)
	}
	return err
}

func (h *ObjectStorageHandler) createBucket(w http.ResponseWriter, r *http.Request, q osRequest) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	var d struct {
		Name                string                    `json:"name"`
		CompartmentID       string                    `json:"compartmentId"`
		Metadata            map[string]string         `json:"metadata"`
		PublicAccessType    string                    `json:"publicAccessType"`
		StorageTier         string                    `json:"storageTier"`
		ObjectEventsEnabled *bool                     `json:"objectEventsEnabled"`
		FreeformTags        map[string]string         `json:"freeformTags"`
		DefinedTags         map[string]map[string]any `json:"definedTags"`
		KmsKeyID            *string                   `json:"kmsKeyId"`
		IsBucketKeyEnabled  *bool                     `json:"isBucketKeyEnabled"`
		Versioning          string                    `json:"versioning"`
		AutoTiering         string                    `json:"autoTiering"`
		BucketScope         string                    `json:"bucketScope"`
	}
	if err := osDecode(body, &d); err != nil {
		return err
	}
	switch {
	case d.Name == "":
		return Missing("name")
	case d.CompartmentID == "":
		return Missing("compartmentId")
	}
	if err := objectstore.ValidateBucketName(d.Name); err != nil {
		return BadRequest("name: %v", err)
	}
	if d.PublicAccessType != "" && d.PublicAccessType != "NoPublicAccess" {
		return BadRequest("publicAccessType %q is not supported; only NoPublicAccess", d.PublicAccessType)
	}
	if d.StorageTier != "" && d.StorageTier != "Standard" {
		return BadRequest("storageTier %q is not supported; only Standard", d.StorageTier)
	}
	if d.Versioning != "" && d.Versioning != "Disabled" {
		return BadRequest("versioning %q is not supported; only Disabled", d.Versioning)
	}
	if err := h.checkCompartment(r.Context(), q, d.CompartmentID); err != nil {
		return err
	}
	b := &objectstore.Bucket{
		Namespace: q.ns, Name: d.Name, CompartmentID: d.CompartmentID, CreatedBy: q.caller.UserID,
		Metadata: d.Metadata, FreeformTags: d.FreeformTags, DefinedTags: d.DefinedTags,
	}
	if err := h.Objects.CreateBucket(r.Context(), b); err != nil {
		return err
	}
	w.Header().Set("etag", b.ETag)
	w.Header().Set("location", "/n/"+url.PathEscape(q.ns)+"/b/"+url.PathEscape(b.Name))
	WriteJSON(w, http.StatusOK, toBucketJSON(b, false))
	return nil
}

func (h *ObjectStorageHandler) getBucket(w http.ResponseWriter, r *http.Request, q osRequest) error {
	b, err := h.Objects.GetBucket(r.Context(), q.ns, q.bucket)
	if err != nil {
		return err
	}
	if im := r.Header.Get("if-match"); im != "" && im != b.ETag {
		return PreconditionFailed("if-match %q does not match the bucket's etag", im)
	}
	w.Header().Set("etag", b.ETag)
	if inm := r.Header.Get("if-none-match"); inm != "" && (inm == "*" || inm == b.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	WriteJSON(w, http.StatusOK, toBucketJSON(b, false))
	return nil
}

func (h *ObjectStorageHandler) listBuckets(w http.ResponseWriter, r *http.Request, q osRequest) error {
	qs := r.URL.Query()
	comp := qs.Get("compartmentId")
	if comp == "" {
		return Missing("compartmentId")
	}
	if err := h.checkCompartment(r.Context(), q, comp); err != nil {
		return err
	}
	limit, err := osLimit(qs.Get("limit"), 1000)
	if err != nil {
		return err
	}
	bs, err := h.Objects.ListBuckets(r.Context(), q.ns, comp)
	if err != nil {
		return err
	}
	page := qs.Get("page")
	i := sort.Search(len(bs), func(i int) bool { return bs[i].Name > page })
	if page == "" {
		i = 0
	}
	out := []osBucketJSON{}
	for ; i < len(bs) && len(out) < limit; i++ {
		out = append(out, toBucketJSON(bs[i], true))
	}
	if i < len(bs) {
		w.Header().Set("opc-next-page", bs[i-1].Name)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func osLimit(s string, max int) (int, error) {
	if s == "" {
		return max, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, BadRequest("limit %q must be an integer from 1 to %d", s, max)
	}
	return n, nil
}

// osAttrs reads the object attributes of a PutObject request.
func osAttrs(r *http.Request) objectstore.ObjectAttrs {
	a := objectstore.ObjectAttrs{
		ContentType:        r.Header.Get("Content-Type"),
		ContentEncoding:    r.Header.Get("Content-Encoding"),
		ContentLanguage:    r.Header.Get("Content-Language"),
		ContentDisposition: r.Header.Get("Content-Disposition"),
		CacheControl:       r.Header.Get("Cache-Control"),
		StorageTier:        r.Header.Get("storage-tier"),
	}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "opc-meta-") && len(v) > 0 {
			if a.Metadata == nil {
				a.Metadata = map[string]string{}
			}
			// The SDK's UploadManager passes keys already prefixed
			// ("opc-meta-x") into a single PutObject; store them once.
			key := strings.TrimPrefix(lk, "opc-meta-")
			a.Metadata[strings.TrimPrefix(key, "opc-meta-")] = v[0]
		}
	}
	return a
}

func (h *ObjectStorageHandler) putObject(w http.ResponseWriter, r *http.Request, q osRequest) error {
	a := osAttrs(r)
	if a.StorageTier != "" && a.StorageTier != "Standard" {
		return BadRequest("storage-tier %q is not supported; only Standard", a.StorageTier)
	}
	if inm := r.Header.Get("if-none-match"); inm != "" && inm != "*" {
		return BadRequest("if-none-match must be '*' on PutObject")
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		body = r.Body
	}
	if err := osCheckMD5Header(r); err != nil {
		return err
	}
	info, err := h.Objects.PutObject(r.Context(), q.ns, q.bucket, q.object, body, objectstore.PutOptions{
		ObjectAttrs: a,
		ContentMD5:  r.Header.Get("Content-MD5"),
		Size:        r.ContentLength,
		IfMatch:     r.Header.Get("if-match"),
		IfNoneMatch: r.Header.Get("if-none-match"),
	})
	if err != nil {
		return err
	}
	w.Header().Set("opc-content-md5", info.MD5)
	w.Header().Set("etag", info.ETag)
	w.Header().Set("last-modified", info.TimeModified.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	return nil
}

// osObjectHeaders sets the headers GetObject and HeadObject answer with.
func osObjectHeaders(w http.ResponseWriter, info *objectstore.ObjectInfo) {
	hd := w.Header()
	hd.Set("etag", info.ETag)
	for k, v := range info.Metadata {
		hd.Set("opc-meta-"+k, v)
	}
	if info.MD5 != "" {
		hd.Set("content-md5", info.MD5)
	}
	if info.MultipartMD5 != "" {
		hd.Set("opc-multipart-md5", info.MultipartMD5)
	}
	hd.Set("Content-Type", info.ContentType)
	for name, v := range map[string]string{
		"Content-Language": info.ContentLanguage, "Content-Encoding": info.ContentEncoding,
		"Cache-Control": info.CacheControl, "Content-Disposition": info.ContentDisposition,
	} {
		if v != "" {
			hd.Set(name, v)
		}
	}
	hd.Set("last-modified", info.TimeModified.UTC().Format(http.TimeFormat))
	hd.Set("storage-tier", info.StorageTier)
}

func (h *ObjectStorageHandler) getObject(w http.ResponseWriter, r *http.Request, q osRequest) error {
	ctx := r.Context()
	var info *objectstore.ObjectInfo
	var obj *objectstore.Object
	var err error
	if r.Method == http.MethodHead {
		info, err = h.Objects.HeadObject(ctx, q.ns, q.bucket, q.object)
	} else {
		obj, err = h.Objects.OpenObject(ctx, q.ns, q.bucket, q.object)
		if obj != nil {
			defer obj.Close()
			info = obj.Info
		}
	}
	if err != nil {
		return err
	}
	if im := r.Header.Get("if-match"); im != "" && im != info.ETag {
		return &Error{http.StatusPreconditionFailed, "IfMatchFailed", fmt.Sprintf("if-match %q does not match the object's etag", im)}
	}
	if inm := r.Header.Get("if-none-match"); inm != "" && (inm == "*" || inm == info.ETag) {
		w.Header().Set("etag", info.ETag)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	osObjectHeaders(w, info)
	start, length := int64(0), info.Size
	status := http.StatusOK
	if rg := r.Header.Get("range"); rg != "" && r.Method == http.MethodGet {
		s, e, ok := osParseRange(rg, info.Size)
		if !ok {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
			return &Error{http.StatusRequestedRangeNotSatisfiable, "InvalidRange", fmt.Sprintf("range %q is not satisfiable for an object of %d bytes", rg, info.Size)}
		}
		start, length = s, e-s+1
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, e, info.Size))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, io.NewSectionReader(obj.File, start, length)); err != nil {
		// The status is sent; all that is left is to stop early.
		return nil
	}
	return nil
}

// osParseRange parses one "bytes=a-b", "bytes=a-" or "bytes=-n" range
// into inclusive offsets within size.
func osParseRange(h string, size int64) (int64, int64, bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false
		}
		if n > size {
			n = size
		}
		return size - n, size - 1, true
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 || s >= size {
		return 0, 0, false
	}
	e := size - 1
	if b != "" {
		e, err = strconv.ParseInt(b, 10, 64)
		if err != nil || e < s {
			return 0, 0, false
		}
		if e >= size {
			e = size - 1
		}
	}
	return s, e, true
}

type osObjectSummary struct {
	Name         string  `json:"name"`
	Size         *int64  `json:"size,omitempty"`
	MD5          *string `json:"md5,omitempty"`
	TimeCreated  *string `json:"timeCreated,omitempty"`
	ETag         *string `json:"etag,omitempty"`
	StorageTier  *string `json:"storageTier,omitempty"`
	TimeModified *string `json:"timeModified,omitempty"`
}

func (h *ObjectStorageHandler) listObjects(w http.ResponseWriter, r *http.Request, q osRequest) error {
	qs := r.URL.Query()
	limit, err := osLimit(qs.Get("limit"), 1000)
	if err != nil {
		return err
	}
	fields := map[string]bool{}
	for _, f := range strings.Split(qs.Get("fields"), ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case "name", "size", "etag", "timeCreated", "md5", "timeModified", "storageTier", "archivalState":
			fields[f] = true
		default:
			return BadRequest("fields: unknown field %q", f)
		}
	}
	res, err := h.Objects.ListObjects(r.Context(), q.ns, q.bucket, objectstore.ListOptions{
		Prefix: qs.Get("prefix"), Start: qs.Get("start"), StartAfter: qs.Get("startAfter"),
		End: qs.Get("end"), Delimiter: qs.Get("delimiter"), Limit: limit,
	})
	if err != nil {
		return err
	}
	out := struct {
		Objects       []osObjectSummary `json:"objects"`
		Prefixes      []string          `json:"prefixes,omitempty"`
		NextStartWith string            `json:"nextStartWith,omitempty"`
	}{Objects: []osObjectSummary{}, Prefixes: res.Prefixes, NextStartWith: res.NextStartWith}
	for _, o := range res.Objects {
		s := osObjectSummary{Name: o.Name}
		if fields["size"] {
			s.Size = &o.Size
		}
		if fields["md5"] {
			md5 := o.MD5
			if md5 == "" {
				md5 = o.MultipartMD5
			}
			s.MD5 = &md5
		}
		if fields["etag"] {
			s.ETag = &o.ETag
		}
		if fields["timeCreated"] {
			t := osTime(o.TimeCreated)
			s.TimeCreated = &t
		}
		if fields["timeModified"] {
			t := osTime(o.TimeModified)
			s.TimeModified = &t
		}
		if fields["storageTier"] {
			s.StorageTier = &o.StorageTier
		}
		out.Objects = append(out.Objects, s)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *ObjectStorageHandler) createUpload(w http.ResponseWriter, r *http.Request, q osRequest) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	var d struct {
		Object             string            `json:"object"`
		ContentType        string            `json:"contentType"`
		ContentLanguage    string            `json:"contentLanguage"`
		ContentEncoding    string            `json:"contentEncoding"`
		ContentDisposition string            `json:"contentDisposition"`
		CacheControl       string            `json:"cacheControl"`
		StorageTier        string            `json:"storageTier"`
		Metadata           map[string]string `json:"metadata"`
	}
	if err := osDecode(body, &d); err != nil {
		return err
	}
	if d.Object == "" {
		return Missing("object")
	}
	if d.StorageTier != "" && d.StorageTier != "Standard" {
		return BadRequest("storageTier %q is not supported; only Standard", d.StorageTier)
	}
	meta := map[string]string{}
	for k, v := range d.Metadata {
		meta[strings.TrimPrefix(strings.ToLower(k), "opc-meta-")] = v
	}
	u := &objectstore.Upload{Namespace: q.ns, Bucket: q.bucket, Object: d.Object, Attrs: objectstore.ObjectAttrs{
		ContentType: d.ContentType, ContentLanguage: d.ContentLanguage, ContentEncoding: d.ContentEncoding,
		ContentDisposition: d.ContentDisposition, CacheControl: d.CacheControl, StorageTier: d.StorageTier, Metadata: meta,
	}}
	if err := h.Objects.CreateUpload(r.Context(), u); err != nil {
		return err
	}
	w.Header().Set("location", "/n/"+url.PathEscape(q.ns)+"/b/"+url.PathEscape(q.bucket)+"/u/"+url.PathEscape(u.Object)+"?uploadId="+u.UploadID)
	WriteJSON(w, http.StatusOK, uploadJSON(u))
	return nil
}

func uploadJSON(u *objectstore.Upload) map[string]string {
	return map[string]string{
		"namespace": u.Namespace, "bucket": u.Bucket, "object": u.Object, "uploadId": u.UploadID,
		"timeCreated": osTime(u.TimeCreated), "storageTier": "Standard",
	}
}

func (h *ObjectStorageHandler) listUploads(w http.ResponseWriter, r *http.Request, q osRequest) error {
	qs := r.URL.Query()
	limit, err := osLimit(qs.Get("limit"), 1000)
	if err != nil {
		return err
	}
	ups, err := h.Objects.ListUploads(r.Context(), q.ns, q.bucket)
	if err != nil {
		return err
	}
	start := 0
	if pg := qs.Get("page"); pg != "" {
		start = len(ups)
		for i, u := range ups {
			if u.UploadID == pg {
				start = i + 1
				break
			}
		}
	}
	out := []map[string]string{}
	i := start
	for ; i < len(ups) && len(out) < limit; i++ {
		out = append(out, uploadJSON(ups[i]))
	}
	if i < len(ups) {
		w.Header().Set("opc-next-page", ups[i-1].UploadID)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *ObjectStorageHandler) uploadPart(w http.ResponseWriter, r *http.Request, q osRequest, uploadID string) error {
	num, err := strconv.Atoi(r.URL.Query().Get("uploadPartNum"))
	if err != nil {
		return BadRequest("uploadPartNum %q must be an integer from 1 to %d", r.URL.Query().Get("uploadPartNum"), objectstore.MaxPartNumber)
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		body = r.Body
	}
	if err := osCheckMD5Header(r); err != nil {
		return err
	}
	p, err := h.Objects.UploadPart(r.Context(), q.ns, q.bucket, q.object, uploadID, num, body, r.Header.Get("Content-MD5"), r.ContentLength)
	if err != nil {
		return err
	}
	w.Header().Set("opc-content-md5", p.MD5)
	w.Header().Set("etag", p.ETag)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *ObjectStorageHandler) commitUpload(w http.ResponseWriter, r *http.Request, q osRequest, uploadID string) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	var d struct {
		PartsToCommit []struct {
			PartNum *int   `json:"partNum"`
			ETag    string `json:"etag"`
		} `json:"partsToCommit"`
		PartsToExclude []int `json:"partsToExclude"`
	}
	if err := osDecode(body, &d); err != nil {
		return err
	}
	if len(d.PartsToCommit) == 0 {
		return Missing("partsToCommit")
	}
	parts := make([]objectstore.CommitPart, 0, len(d.PartsToCommit))
	for i, p := range d.PartsToCommit {
		if p.PartNum == nil {
			return Missing(fmt.Sprintf("partsToCommit[%d].partNum", i))
		}
		if p.ETag == "" {
			return Missing(fmt.Sprintf("partsToCommit[%d].etag", i))
		}
		parts = append(parts, objectstore.CommitPart{PartNum: *p.PartNum, ETag: p.ETag})
	}
	info, err := h.Objects.CommitUpload(r.Context(), q.ns, q.bucket, q.object, uploadID, parts, r.Header.Get("if-match"), r.Header.Get("if-none-match"))
	if err != nil {
		return err
	}
	w.Header().Set("opc-multipart-md5", info.MultipartMD5)
	w.Header().Set("etag", info.ETag)
	w.Header().Set("last-modified", info.TimeModified.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *ObjectStorageHandler) listParts(w http.ResponseWriter, r *http.Request, q osRequest, uploadID string) error {
	qs := r.URL.Query()
	limit, err := osLimit(qs.Get("limit"), 1000)
	if err != nil {
		return err
	}
	after := 0
	if pg := qs.Get("page"); pg != "" {
		if after, err = strconv.Atoi(pg); err != nil {
			return BadRequest("page %q is not a page token of this list", pg)
		}
	}
	parts, err := h.Objects.ListParts(r.Context(), q.ns, q.bucket, q.object, uploadID)
	if err != nil {
		return err
	}
	type partJSON struct {
		ETag       string `json:"etag"`
		MD5        string `json:"md5"`
		Size       int64  `json:"size"`
		PartNumber int    `json:"partNumber"`
	}
	out := []partJSON{}
	last := 0
	more := false
	for _, p := range parts {
		if p.PartNumber <= after {
			continue
		}
		if len(out) == limit {
			more = true
			break
		}
		out = append(out, partJSON{p.ETag, p.MD5, p.Size, p.PartNumber})
		last = p.PartNumber
	}
	if more {
		w.Header().Set("opc-next-page", strconv.Itoa(last))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// osWriteErr answers an Object Storage error with OCI's codes.
func osWriteErr(w http.ResponseWriter, r *http.Request, q osRequest, err error) {
	var ae *Error
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, auth.ErrBodyHashMismatch):
		ae = &Error{http.StatusUnauthorized, CodeNotAuthenticated, "the request body does not match its signed x-content-sha256"}
	case errors.Is(err, objectstore.ErrBucketNotFound):
		ae = &Error{http.StatusNotFound, "BucketNotFound", fmt.Sprintf("Either the bucket named '%s' does not exist in the namespace '%s' or you are not authorized to access it", q.bucket, q.ns)}
	case errors.Is(err, objectstore.ErrObjectNotFound):
		ae = &Error{http.StatusNotFound, "ObjectNotFound", fmt.Sprintf("The object '%s' was not found in the bucket '%s'", q.object, q.bucket)}
	case errors.Is(err, objectstore.ErrUploadNotFound):
		ae = &Error{http.StatusNotFound, "NoSuchUpload", fmt.Sprintf("No multipart upload %s for object '%s' in bucket '%s'", r.URL.Query().Get("uploadId"), q.object, q.bucket)}
	case errors.Is(err, objectstore.ErrBucketExists):
		ae = &Error{http.StatusConflict, "BucketAlreadyExists", fmt.Sprintf("Either the bucket '%s' in namespace '%s' already exists or you are not authorized to create it", bucketNameFromErr(err, q.bucket), q.ns)}
	case errors.Is(err, objectstore.ErrBucketNotEmpty):
		ae = &Error{http.StatusConflict, "BucketNotEmpty", fmt.Sprintf("Bucket named '%s' is not empty. Delete all objects and multipart uploads first.", q.bucket)}
	case errors.Is(err, objectstore.ErrPrecondition):
		code := "IfMatchFailed"
		if r.Header.Get("if-none-match") != "" {
			code = "IfNoneMatchFailed"
		}
		ae = &Error{http.StatusPreconditionFailed, code, err.Error()}
	case errors.Is(err, objectstore.ErrContentMD5):
		ae = &Error{http.StatusBadRequest, "UnmatchedContentMD5", strings.TrimSuffix(err.Error(), ": "+objectstore.ErrContentMD5.Error())}
	case errors.Is(err, objectstore.ErrInvalidName), errors.Is(err, objectstore.ErrSizeMismatch), errors.Is(err, objectstore.ErrInvalidPart):
		ae = BadRequest("%v", err)
	case errors.Is(err, store.ErrNotFound):
		ae = NotFound("resource not found or not authorized")
	case errors.Is(err, context.Canceled):
		ae = &Error{http.StatusServiceUnavailable, CodeServiceUnavailable, "request canceled"}
	default:
		ae = &Error{http.StatusInternalServerError, CodeInternalServerError, "internal error; request id " + RequestID(r.Context())}
	}
	WriteError(w, r, ae.Status, ae.Code, ae.Message)
}

// bucketNameFromErr recovers the bucket name of a CreateBucket conflict
// ("bucket NAME: ..."), whose name came in the body rather than the path.
func bucketNameFromErr(err error, fallback string) string {
	if rest, ok := strings.CutPrefix(err.Error(), "bucket "); ok {
		if name, _, ok := strings.Cut(rest, ":"); ok {
			return name
		}
	}
	return fallback
}

// osCheckMD5Header rejects a Content-MD5 header that is not a base64 MD5.
func osCheckMD5Header(r *http.Request) error {
	v := r.Header.Get("Content-MD5")
	if v == "" {
		return nil
	}
	if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != md5.Size {
		return &Error{http.StatusBadRequest, "InvalidContentMD5", fmt.Sprintf("Content-MD5 %q is not the base64 encoding of a 16-byte MD5", v)}
	}
	return nil
}

// osDecode decodes a JSON request body into v. Unlike the Generative AI
// API it ignores fields it does not know, as Object Storage does: the
// TypeScript SDK's UploadManager, for one, sends its own bookkeeping
// fields in CommitMultipartUpload.
func osDecode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return &Error{http.StatusBadRequest, CodeMissingParameter, "request body is required"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return &Error{http.StatusBadRequest, CodeInvalidParameter, fmt.Sprintf("%s: expected %s, got JSON %s", ute.Field, ute.Type, ute.Value)}
		}
		return &Error{http.StatusBadRequest, CodeCannotParseRequest, "request body: " + err.Error()}
	}
	return nil
}
