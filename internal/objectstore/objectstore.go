// Package objectstore keeps Object Storage buckets and objects on disk, for
// the Object Storage API and for the jobs that read datasets and write
// model artifacts.
//
// Layout under the root directory, per namespace and bucket:
//
//	ROOT/NS/BUCKET/bucket.json        the bucket's metadata
//	ROOT/NS/BUCKET/o/HASH.json        an object's metadata (HASH: SHA-256 of its name)
//	ROOT/NS/BUCKET/d/ID.data          an object's bytes, named by the metadata
//	ROOT/NS/BUCKET/u/UPLOAD/...       a multipart upload in progress
//	ROOT/NS/BUCKET/tmp/               files being written
//
// Bytes are streamed to a temporary file, synced and renamed into d/; then
// the object's metadata file is replaced the same way, which is the moment
// the new version becomes visible. Objects are never held whole in memory.
// Object names are hashed into file names, so no name can reach outside
// its bucket.
package objectstore

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Errors callers branch on; the Store wraps them with context.
var (
	ErrBucketNotFound = errors.New("bucket not found")
	ErrObjectNotFound = errors.New("object not found")
	ErrUploadNotFound = errors.New("multipart upload not found")
	ErrBucketExists   = errors.New("bucket already exists")
	ErrBucketNotEmpty = errors.New("bucket not empty")
	// ErrPrecondition: an if-match or if-none-match condition failed.
	ErrPrecondition = errors.New("precondition failed")
	// ErrNotModified: a read's if-none-match matched the object's ETag.
	ErrNotModified = errors.New("not modified")
	// ErrInvalidName: a namespace, bucket or object name breaks the rules.
	ErrInvalidName = errors.New("invalid name")
	// ErrContentMD5: the body does not match the Content-MD5 sent with it,
	// or that header is not a base64 MD5.
	ErrContentMD5 = errors.New("content MD5 mismatch")
	// ErrSizeMismatch: the body is shorter or longer than announced.
	ErrSizeMismatch = errors.New("body size does not match its length")
	// ErrInvalidPart: a multipart commit names a part that is not there,
	// with another ETag, or an invalid part number.
	ErrInvalidPart = errors.New("invalid part")
)

// MaxObjectNameBytes is the longest object name, as in OCI.
const MaxObjectNameBytes = 1024

// MaxPartNumber is the highest multipart part number.
const MaxPartNumber = 10000

// Store is a directory of buckets. It is safe for concurrent use by the
// goroutines of one process. Several processes may share a root (Gantry's
// distributed mode puts it on a shared filesystem): each object write is a
// rename of a private temporary file, but conditional puts (if-match) and
// a bucket delete racing a put are serialised only within one process.
type Store struct {
	root string
	now  func() time.Time

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per bucket: serialises metadata switches
}

// StaleTemp is how old a temporary file must be before Open removes it on
// systems without advisory file locks. With them (every Unix), a writer
// locks its temporary file while it writes, and Open removes exactly the
// files no live writer holds.
const StaleTemp = time.Hour

// Open returns the store rooted at dir, creating the directory if needed
// and removing the temporary files interrupted writes left behind. Files
// that a live writer holds (another process sharing the root) are kept.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("objectstore: %w", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "*", "*", "tmp", "*"))
	for _, t := range tmps {
		if abandonedTemp(t) {
			os.Remove(t)
		}
	}
	return &Store{root: dir, now: time.Now, locks: map[string]*sync.Mutex{}}, nil
}

// Root is the directory the store keeps its files in.
func (s *Store) Root() string { return s.root }

func (s *Store) lock(ns, bucket string) func() {
	s.mu.Lock()
	l, ok := s.locks[ns+"/"+bucket]
	if !ok {
		l = &sync.Mutex{}
		s.locks[ns+"/"+bucket] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// ValidateNamespace checks a namespace name: 1 to 64 letters, digits,
// '-' or '_'.
func ValidateNamespace(ns string) error {
	if ns == "" || len(ns) > 64 {
		return fmt.Errorf("%w: namespace %q must be 1 to 64 characters", ErrInvalidName, ns)
	}
	for _, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: namespace %q may hold only letters, digits, '-' and '_'", ErrInvalidName, ns)
		}
	}
	return nil
}

// ValidateBucketName checks a bucket name as OCI does: 1 to 256 letters,
// digits, '-', '_' or '.', and not "." or "..".
func ValidateBucketName(name string) error {
	if name == "" || len(name) > 256 || name == "." || name == ".." {
		return fmt.Errorf("%w: bucket name %q must be 1 to 256 characters", ErrInvalidName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: bucket name %q may hold only letters, digits, '-', '_' and '.'", ErrInvalidName, name)
		}
	}
	return nil
}

// ValidateObjectName checks an object name: 1 to 1024 bytes of UTF-8
// without NUL or newlines, and no "." or ".." path segment (names are
// often used as relative paths on download).
func ValidateObjectName(name string) error {
	if name == "" || len(name) > MaxObjectNameBytes {
		return fmt.Errorf("%w: object name must be 1 to %d bytes", ErrInvalidName, MaxObjectNameBytes)
	}
	if !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\n\r") {
		return fmt.Errorf("%w: object name %q is not valid UTF-8 or holds a control character", ErrInvalidName, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: object name %q has a %q path segment", ErrInvalidName, name, seg)
		}
	}
	return nil
}

func (s *Store) bucketDir(ns, bucket string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	if err := ValidateBucketName(bucket); err != nil {
		return "", err
	}
	return filepath.Join(s.root, ns, bucket), nil
}

func objectKey(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// newID returns a random identifier in the 8-4-4-4-12 hex form OCI uses
// for ETags and upload ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// createTemp creates a temporary file in dir and locks it (lockTemp) so
// that Open in another process leaves it alone while it is being written.
func createTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := lockTemp(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// writeJSONAtomic writes v as JSON to path via a synced temporary file in tmpDir.
func writeJSONAtomic(tmpDir, path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := createTemp(tmpDir, "meta-*")
	if err != nil {
		return err
	}
	name := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Bucket is a bucket's metadata.
type Bucket struct {
	Namespace        string                    `json:"namespace"`
	Name             string                    `json:"name"`
	ID               string                    `json:"id"`
	CompartmentID    string                    `json:"compartmentId"`
	CreatedBy        string                    `json:"createdBy"`
	TimeCreated      time.Time                 `json:"timeCreated"`
	ETag             string                    `json:"etag"`
	Metadata         map[string]string         `json:"metadata,omitempty"`
	FreeformTags     map[string]string         `json:"freeformTags,omitempty"`
	DefinedTags      map[string]map[string]any `json:"definedTags,omitempty"`
	PublicAccessType string                    `json:"publicAccessType,omitempty"`
	StorageTier      string                    `json:"storageTier,omitempty"`
}

// CreateBucket creates b (Namespace, Name, CompartmentID set by the
// caller); it fills in ID, TimeCreated, ETag, and the defaults NoPublicAccess
// and Standard. ErrBucketExists when the name is taken in the namespace.
func (s *Store) CreateBucket(ctx context.Context, b *Bucket) error {
	dir, err := s.bucketDir(b.Namespace, b.Name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := s.lock(b.Namespace, b.Name)
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "bucket.json")); err == nil {
		return fmt.Errorf("bucket %s: %w", b.Name, ErrBucketExists)
	}
	for _, sub := range []string{"o", "d", "u", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("create bucket %s: %w", b.Name, err)
		}
	}
	b.ID = "ocid1.bucket.oc1..aaaaaaaa" + strings.ReplaceAll(newID(), "-", "")
	b.TimeCreated = s.now().UTC()
	b.ETag = newID()
	if b.PublicAccessType == "" {
		b.PublicAccessType = "NoPublicAccess"
	}
	if b.StorageTier == "" {
		b.StorageTier = "Standard"
	}
	if err := writeJSONAtomic(filepath.Join(dir, "tmp"), filepath.Join(dir, "bucket.json"), b); err != nil {
		return fmt.Errorf("create bucket %s: %w", b.Name, err)
	}
	return nil
}

// EnsureBucket returns the bucket, creating it in compartmentID first if
// it does not exist.
func (s *Store) EnsureBucket(ctx context.Context, ns, name, compartmentID string) (*Bucket, error) {
	b, err := s.GetBucket(ctx, ns, name)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, ErrBucketNotFound) {
		return nil, err
	}
	b = &Bucket{Namespace: ns, Name: name, CompartmentID: compartmentID}
	if err := s.CreateBucket(ctx, b); err != nil && !errors.Is(err, ErrBucketExists) {
		return nil, err
	}
	return s.GetBucket(ctx, ns, name)
}

// GetBucket reads a bucket's metadata; ErrBucketNotFound when absent.
func (s *Store) GetBucket(ctx context.Context, ns, name string) (*Bucket, error) {
	dir, err := s.bucketDir(ns, name)
	if err != nil {
		return nil, err
	}
	var b Bucket
	if err := readJSON(filepath.Join(dir, "bucket.json"), &b); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("bucket %s: %w", name, ErrBucketNotFound)
		}
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return &b, nil
}

// ListBuckets lists the buckets of a namespace in one compartment ("": all),
// sorted by name.
func (s *Store) ListBuckets(ctx context.Context, ns, compartmentID string) ([]*Bucket, error) {
	if err := ValidateNamespace(ns); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, ns))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	var out []*Bucket
	for _, e := range entries {
		if !e.IsDir() || ValidateBucketName(e.Name()) != nil {
			continue
		}
		b, err := s.GetBucket(ctx, ns, e.Name())
		if errors.Is(err, ErrBucketNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if compartmentID == "" || b.CompartmentID == compartmentID {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteBucket deletes an empty bucket: ErrBucketNotEmpty while it holds
// objects or multipart uploads, ErrPrecondition when ifMatch is set and
// is not its ETag.
func (s *Store) DeleteBucket(ctx context.Context, ns, name, ifMatch string) error {
	b, err := s.GetBucket(ctx, ns, name)
	if err != nil {
		return err
	}
	unlock := s.lock(ns, name)
	defer unlock()
	if ifMatch != "" && ifMatch != b.ETag {
		return fmt.Errorf("bucket %s: if-match %q: %w", name, ifMatch, ErrPrecondition)
	}
	dir := filepath.Join(s.root, ns, name)
	for _, sub := range []string{"o", "u"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete bucket %s: %w", name, err)
		}
		if len(entries) > 0 {
			what := "objects"
			if sub == "u" {
				what = "multipart uploads in progress"
			}
			return fmt.Errorf("bucket %s holds %s: %w", name, what, ErrBucketNotEmpty)
		}
	}
	if err := os.Remove(filepath.Join(dir, "bucket.json")); err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	return nil
}

// ObjectInfo is an object's metadata.
type ObjectInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// MD5 is the base64 MD5 of the bytes; empty for multipart objects.
	MD5 string `json:"md5,omitempty"`
	// MultipartMD5 is base64(MD5(part MD5s concatenated))-PARTCOUNT for
	// multipart objects.
	MultipartMD5       string            `json:"multipartMd5,omitempty"`
	ETag               string            `json:"etag"`
	ContentType        string            `json:"contentType,omitempty"`
	ContentEncoding    string            `json:"contentEncoding,omitempty"`
	ContentLanguage    string            `json:"contentLanguage,omitempty"`
	ContentDisposition string            `json:"contentDisposition,omitempty"`
	CacheControl       string            `json:"cacheControl,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	StorageTier        string            `json:"storageTier,omitempty"`
	TimeCreated        time.Time         `json:"timeCreated"`
	TimeModified       time.Time         `json:"timeModified"`
	DataFile           string            `json:"dataFile"`
}

// ObjectAttrs are the attributes a writer sets on an object.
type ObjectAttrs struct {
	ContentType        string
	ContentEncoding    string
	ContentLanguage    string
	ContentDisposition string
	CacheControl       string
	StorageTier        string
	Metadata           map[string]string // opc-meta-* without the prefix
}

// PutOptions are the conditions and attributes of a PutObject.
type PutOptions struct {
	ObjectAttrs
	// ContentMD5, when set, is the base64 MD5 the body must have.
	ContentMD5 string
	// Size is the body's announced length; -1 (or 0 with an empty body) when unknown.
	Size int64
	// IfMatch: the object must exist with this ETag. IfNoneMatch "*": it must not exist.
	IfMatch, IfNoneMatch string
}

// PutObject streams r into the object ns/bucket/name, replacing any
// previous version atomically once the body is complete and checked. An
// error reading r (for example auth.ErrBodyHashMismatch) leaves the old
// version in place and is returned wrapped.
func (s *Store) PutObject(ctx context.Context, ns, bucket, name string, r io.Reader, o PutOptions) (*ObjectInfo, error) {
	if err := ValidateObjectName(name); err != nil {
		return nil, err
	}
	if _, err := s.GetBucket(ctx, ns, bucket); err != nil {
		return nil, err
	}
	if err := checkConditions(s, ns, bucket, name, o.IfMatch, o.IfNoneMatch); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, ns, bucket)
	dataFile, size, sum, err := s.writeData(ctx, dir, r)
	if err != nil {
		return nil, fmt.Errorf("put object %s: %w", name, err)
	}
	md5b64 := base64.StdEncoding.EncodeToString(sum)
	fail := func(err error) (*ObjectInfo, error) {
		os.Remove(filepath.Join(dir, "d", dataFile))
		return nil, err
	}
	if o.Size > 0 && size != o.Size {
		return fail(fmt.Errorf("put object %s: got %d bytes, announced %d: %w", name, size, o.Size, ErrSizeMismatch))
	}
	if o.ContentMD5 != "" && o.ContentMD5 != md5b64 {
		return fail(fmt.Errorf("The computed MD5 of the request body (%s) does not match the Content-MD5 header (%s): %w", md5b64, o.ContentMD5, ErrContentMD5))
	}
	info := &ObjectInfo{Name: name, Size: size, MD5: md5b64, DataFile: dataFile}
	setAttrs(info, o.ObjectAttrs)
	if err := s.commitObject(ns, bucket, info, o.IfMatch, o.IfNoneMatch); err != nil {
		return fail(err)
	}
	return info, nil
}

func setAttrs(info *ObjectInfo, a ObjectAttrs) {
	info.ContentType = a.ContentType
	if info.ContentType == "" {
		info.ContentType = "application/octet-stream"
	}
	info.ContentEncoding = a.ContentEncoding
	info.ContentLanguage = a.ContentLanguage
	info.ContentDisposition = a.ContentDisposition
	info.CacheControl = a.CacheControl
	info.StorageTier = a.StorageTier
	if info.StorageTier == "" {
		info.StorageTier = "Standard"
	}
	if len(a.Metadata) > 0 {
		info.Metadata = make(map[string]string, len(a.Metadata))
		for k, v := range a.Metadata {
			info.Metadata[strings.ToLower(k)] = v
		}
	}
}

// checkConditions checks if-match / if-none-match against the current
// version (before the body is read, so a failing put costs nothing; they
// are checked again at commit).
func checkConditions(s *Store, ns, bucket, name, ifMatch, ifNoneMatch string) error {
	if ifMatch == "" && ifNoneMatch == "" {
		return nil
	}
	cur, err := s.readInfo(ns, bucket, name)
	if err != nil && !errors.Is(err, ErrObjectNotFound) {
		return err
	}
	return conditionsHold(name, cur, ifMatch, ifNoneMatch)
}

func conditionsHold(name string, cur *ObjectInfo, ifMatch, ifNoneMatch string) error {
	if ifMatch != "" && (cur == nil || (ifMatch != "*" && cur.ETag != ifMatch)) {
		return fmt.Errorf("object %s: if-match %q: %w", name, ifMatch, ErrPrecondition)
	}
	if ifNoneMatch != "" && cur != nil && (ifNoneMatch == "*" || ifNoneMatch == cur.ETag) {
		return fmt.Errorf("object %s: if-none-match %q: %w", name, ifNoneMatch, ErrPrecondition)
	}
	return nil
}

// writeData streams r to a synced file in dir/d and returns its base
// name, size and MD5.
func (s *Store) writeData(ctx context.Context, dir string, r io.Reader) (string, int64, []byte, error) {
	f, err := createTemp(filepath.Join(dir, "tmp"), "data-*")
	if err != nil {
		return "", 0, nil, err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return "", 0, nil, fmt.Errorf("read body: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, nil, err
	}
	if err := f.Close(); err != nil {
		return "", 0, nil, err
	}
	name := strings.ReplaceAll(newID(), "-", "") + ".data"
	if err := os.Rename(tmp, filepath.Join(dir, "d", name)); err != nil {
		return "", 0, nil, err
	}
	ok = true
	return name, n, h.Sum(nil), nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// commitObject makes info the current version of its object, under the
// bucket lock, checking the conditions again, and removes the old data.
func (s *Store) commitObject(ns, bucket string, info *ObjectInfo, ifMatch, ifNoneMatch string) error {
	unlock := s.lock(ns, bucket)
	defer unlock()
	dir := filepath.Join(s.root, ns, bucket)
	if _, err := os.Stat(filepath.Join(dir, "bucket.json")); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, ErrBucketNotFound)
	}
	cur, err := s.readInfo(ns, bucket, info.Name)
	if err != nil && !errors.Is(err, ErrObjectNotFound) {
		return err
	}
	if err := conditionsHold(info.Name, cur, ifMatch, ifNoneMatch); err != nil {
		return err
	}
	now := s.now().UTC()
	info.TimeCreated, info.TimeModified = now, now
	info.ETag = newID()
	if err := writeJSONAtomic(filepath.Join(dir, "tmp"), filepath.Join(dir, "o", objectKey(info.Name)+".json"), info); err != nil {
		return fmt.Errorf("commit object %s: %w", info.Name, err)
	}
	if cur != nil && cur.DataFile != info.DataFile {
		os.Remove(filepath.Join(dir, "d", cur.DataFile))
	}
	return nil
}

func (s *Store) readInfo(ns, bucket, name string) (*ObjectInfo, error) {
	dir, err := s.bucketDir(ns, bucket)
	if err != nil {
		return nil, err
	}
	if err := ValidateObjectName(name); err != nil {
		return nil, err
	}
	var info ObjectInfo
	if err := readJSON(filepath.Join(dir, "o", objectKey(name)+".json"), &info); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, berr := os.Stat(filepath.Join(dir, "bucket.json")); berr != nil {
				return nil, fmt.Errorf("bucket %s: %w", bucket, ErrBucketNotFound)
			}
			return nil, fmt.Errorf("object %s: %w", name, ErrObjectNotFound)
		}
		return nil, err
	}
	return &info, nil
}

// HeadObject returns an object's metadata: ErrBucketNotFound or
// ErrObjectNotFound when absent.
func (s *Store) HeadObject(ctx context.Context, ns, bucket, name string) (*ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.readInfo(ns, bucket, name)
}

// Object is an open object: its metadata and its bytes. The caller closes it.
type Object struct {
	Info *ObjectInfo
	*os.File
}

// OpenObject opens an object for reading. The bytes stay those of the
// version opened even if it is replaced or deleted meanwhile.
func (s *Store) OpenObject(ctx context.Context, ns, bucket, name string) (*Object, error) {
	for attempt := 0; ; attempt++ {
		info, err := s.HeadObject(ctx, ns, bucket, name)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(filepath.Join(s.root, ns, bucket, "d", info.DataFile))
		if errors.Is(err, fs.ErrNotExist) && attempt < 5 {
			continue // replaced between reading the metadata and opening the data
		}
		if err != nil {
			return nil, fmt.Errorf("open object %s: %w", name, err)
		}
		return &Object{Info: info, File: f}, nil
	}
}

// DeleteObject removes an object; ErrPrecondition when ifMatch is set
// and is not its ETag.
func (s *Store) DeleteObject(ctx context.Context, ns, bucket, name, ifMatch string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.readInfo(ns, bucket, name); err != nil {
		return err
	}
	unlock := s.lock(ns, bucket)
	defer unlock()
	cur, err := s.readInfo(ns, bucket, name)
	if err != nil {
		return err
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != cur.ETag {
		return fmt.Errorf("object %s: if-match %q: %w", name, ifMatch, ErrPrecondition)
	}
	dir := filepath.Join(s.root, ns, bucket)
	if err := os.Remove(filepath.Join(dir, "o", objectKey(name)+".json")); err != nil {
		return fmt.Errorf("delete object %s: %w", name, err)
	}
	os.Remove(filepath.Join(dir, "d", cur.DataFile))
	return syncDir(filepath.Join(dir, "o"))
}

// ListOptions select objects: names with Prefix, from Start (inclusive)
// or after StartAfter, before End (exclusive); with a Delimiter, names
// with it after the prefix are rolled up into Prefixes. Limit 0 means 1000.
type ListOptions struct {
	Prefix, Start, StartAfter, End, Delimiter string
	Limit                                     int
}

// ListResult is one page of objects in name order; NextStartWith, when
// set, is the Start of the next page.
type ListResult struct {
	Objects       []*ObjectInfo
	Prefixes      []string
	NextStartWith string
}

// ListObjects lists a bucket's objects.
func (s *Store) ListObjects(ctx context.Context, ns, bucket string, o ListOptions) (*ListResult, error) {
	if _, err := s.GetBucket(ctx, ns, bucket); err != nil {
		return nil, err
	}
	limit := o.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	dir := filepath.Join(s.root, ns, bucket, "o")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	var all []*ObjectInfo
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var info ObjectInfo
		if err := readJSON(filepath.Join(dir, e.Name()), &info); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		if !strings.HasPrefix(info.Name, o.Prefix) ||
			(o.Start != "" && info.Name < o.Start) ||
			(o.StartAfter != "" && info.Name <= o.StartAfter) ||
			(o.End != "" && info.Name >= o.End) {
			continue
		}
		all = append(all, &info)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	res := &ListResult{}
	seen := map[string]bool{}
	count := 0
	for _, info := range all {
		if o.Delimiter != "" {
			rest := info.Name[len(o.Prefix):]
			if i := strings.Index(rest, o.Delimiter); i >= 0 {
				p := o.Prefix + rest[:i+len(o.Delimiter)]
				if seen[p] {
					continue
				}
				if count == limit {
					res.NextStartWith = info.Name
					break
				}
				seen[p] = true
				res.Prefixes = append(res.Prefixes, p)
				count++
				continue
			}
		}
		if count == limit {
			res.NextStartWith = info.Name
			break
		}
		res.Objects = append(res.Objects, info)
		count++
	}
	return res, nil
}
