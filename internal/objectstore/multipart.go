package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Upload is a multipart upload in progress.
type Upload struct {
	Namespace   string      `json:"namespace"`
	Bucket      string      `json:"bucket"`
	Object      string      `json:"object"`
	UploadID    string      `json:"uploadId"`
	TimeCreated time.Time   `json:"timeCreated"`
	Attrs       ObjectAttrs `json:"attrs"`
}

// Part is an uploaded part of a multipart upload.
type Part struct {
	PartNumber int    `json:"partNumber"`
	Size       int64  `json:"size"`
	MD5        string `json:"md5"` // base64
	ETag       string `json:"etag"`
	DataFile   string `json:"dataFile"`
}

// CommitPart names a part to commit by number and ETag.
type CommitPart struct {
	PartNum int
	ETag    string
}

func (s *Store) uploadDir(ns, bucket, uploadID string) (string, error) {
	dir, err := s.bucketDir(ns, bucket)
	if err != nil {
		return "", err
	}
	if uploadID == "" || strings.ContainsAny(uploadID, `/\.`) || len(uploadID) > 64 {
		return "", fmt.Errorf("upload %q: %w", uploadID, ErrUploadNotFound)
	}
	return filepath.Join(dir, "u", uploadID), nil
}

// CreateUpload starts a multipart upload of u.Object in u.Namespace/u.Bucket
// and fills in UploadID and TimeCreated.
func (s *Store) CreateUpload(ctx context.Context, u *Upload) error {
	if err := ValidateObjectName(u.Object); err != nil {
		return err
	}
	if _, err := s.GetBucket(ctx, u.Namespace, u.Bucket); err != nil {
		return err
	}
	u.UploadID = newID()
	u.TimeCreated = s.now().UTC()
	dir, err := s.uploadDir(u.Namespace, u.Bucket, u.UploadID)
	if err != nil {
		return err
	}
	unlock := s.lock(u.Namespace, u.Bucket)
	defer unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create upload: %w", err)
	}
	if err := writeJSONAtomic(filepath.Join(s.root, u.Namespace, u.Bucket, "tmp"), filepath.Join(dir, "upload.json"), u); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("create upload: %w", err)
	}
	return nil
}

// GetUpload reads an upload in progress for object; ErrUploadNotFound
// when there is none with that id for that object.
func (s *Store) GetUpload(ctx context.Context, ns, bucket, object, uploadID string) (*Upload, error) {
	dir, err := s.uploadDir(ns, bucket, uploadID)
	if err != nil {
		return nil, err
	}
	var u Upload
	if err := readJSON(filepath.Join(dir, "upload.json"), &u); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, berr := s.GetBucket(ctx, ns, bucket); berr != nil {
				return nil, berr
			}
			return nil, fmt.Errorf("upload %s: %w", uploadID, ErrUploadNotFound)
		}
		return nil, err
	}
	if u.Object != object {
		return nil, fmt.Errorf("upload %s is not for object %s: %w", uploadID, object, ErrUploadNotFound)
	}
	return &u, nil
}

// UploadPart streams r as part partNum (1 to MaxPartNumber) of an upload,
// replacing an earlier upload of that number. contentMD5 and size are
// checked as in PutObject.
func (s *Store) UploadPart(ctx context.Context, ns, bucket, object, uploadID string, partNum int, r io.Reader, contentMD5 string, size int64) (*Part, error) {
	if partNum < 1 || partNum > MaxPartNumber {
		return nil, fmt.Errorf("part number %d is not between 1 and %d: %w", partNum, MaxPartNumber, ErrInvalidPart)
	}
	if _, err := s.GetUpload(ctx, ns, bucket, object, uploadID); err != nil {
		return nil, err
	}
	dir, _ := s.uploadDir(ns, bucket, uploadID)
	bdir := filepath.Join(s.root, ns, bucket)
	dataFile, n, sum, err := s.writeData(ctx, bdir, r)
	if err != nil {
		return nil, fmt.Errorf("upload part %d: %w", partNum, err)
	}
	md5b64 := base64.StdEncoding.EncodeToString(sum)
	fail := func(err error) (*Part, error) {
		os.Remove(filepath.Join(bdir, "d", dataFile))
		return nil, err
	}
	if size > 0 && n != size {
		return fail(fmt.Errorf("part %d: got %d bytes, announced %d: %w", partNum, n, size, ErrSizeMismatch))
	}
	if contentMD5 != "" && contentMD5 != md5b64 {
		return fail(fmt.Errorf("The computed MD5 of the request body (%s) does not match the Content-MD5 header (%s): %w", md5b64, contentMD5, ErrContentMD5))
	}
	p := &Part{PartNumber: partNum, Size: n, MD5: md5b64, ETag: newID(), DataFile: dataFile}
	unlock := s.lock(ns, bucket)
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "upload.json")); err != nil {
		return fail(fmt.Errorf("upload %s: %w", uploadID, ErrUploadNotFound))
	}
	partPath := filepath.Join(dir, "part-"+strconv.Itoa(partNum)+".json")
	var old Part
	hadOld := readJSON(partPath, &old) == nil
	if err := writeJSONAtomic(filepath.Join(bdir, "tmp"), partPath, p); err != nil {
		return fail(fmt.Errorf("upload part %d: %w", partNum, err))
	}
	if hadOld {
		os.Remove(filepath.Join(bdir, "d", old.DataFile))
	}
	return p, nil
}

// ListParts lists an upload's parts by number.
func (s *Store) ListParts(ctx context.Context, ns, bucket, object, uploadID string) ([]*Part, error) {
	if _, err := s.GetUpload(ctx, ns, bucket, object, uploadID); err != nil {
		return nil, err
	}
	dir, _ := s.uploadDir(ns, bucket, uploadID)
	files, err := filepath.Glob(filepath.Join(dir, "part-*.json"))
	if err != nil {
		return nil, err
	}
	parts := make([]*Part, 0, len(files))
	for _, f := range files {
		var p Part
		if err := readJSON(f, &p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		parts = append(parts, &p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	return parts, nil
}

// CommitUpload assembles the listed parts, in part-number order, into the
// object and ends the upload; parts not listed are discarded. Each listed
// part must exist with the given ETag (ErrInvalidPart). The object's
// MultipartMD5 is base64(MD5(concatenated part MD5s))-COUNT, as OCI
// computes it.
func (s *Store) CommitUpload(ctx context.Context, ns, bucket, object, uploadID string, commit []CommitPart, ifMatch, ifNoneMatch string) (*ObjectInfo, error) {
	u, err := s.GetUpload(ctx, ns, bucket, object, uploadID)
	if err != nil {
		return nil, err
	}
	if len(commit) == 0 {
		return nil, fmt.Errorf("no parts to commit: %w", ErrInvalidPart)
	}
	if err := checkConditions(s, ns, bucket, object, ifMatch, ifNoneMatch); err != nil {
		return nil, err
	}
	have, err := s.ListParts(ctx, ns, bucket, object, uploadID)
	if err != nil {
		return nil, err
	}
	byNum := make(map[int]*Part, len(have))
	for _, p := range have {
		byNum[p.PartNumber] = p
	}
	sorted := append([]CommitPart(nil), commit...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].PartNum < sorted[j].PartNum })
	bdir := filepath.Join(s.root, ns, bucket)
	var md5s bytes.Buffer
	readers := make([]io.Reader, 0, len(sorted))
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for i, c := range sorted {
		if i > 0 && sorted[i-1].PartNum == c.PartNum {
			return nil, fmt.Errorf("part %d is listed twice: %w", c.PartNum, ErrInvalidPart)
		}
		p, ok := byNum[c.PartNum]
		if !ok {
			return nil, fmt.Errorf("part %d was not uploaded: %w", c.PartNum, ErrInvalidPart)
		}
		if strings.Trim(c.ETag, `"`) != p.ETag {
			return nil, fmt.Errorf("part %d has ETag %s, not %s: %w", c.PartNum, p.ETag, c.ETag, ErrInvalidPart)
		}
		raw, err := base64.StdEncoding.DecodeString(p.MD5)
		if err != nil {
			return nil, fmt.Errorf("part %d: stored MD5: %w", c.PartNum, err)
		}
		md5s.Write(raw)
		f, err := os.Open(filepath.Join(bdir, "d", p.DataFile))
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", c.PartNum, err)
		}
		closers = append(closers, f)
		readers = append(readers, f)
	}
	dataFile, size, _, err := s.writeData(ctx, bdir, io.MultiReader(readers...))
	if err != nil {
		return nil, fmt.Errorf("commit upload %s: %w", uploadID, err)
	}
	sum := md5.Sum(md5s.Bytes())
	info := &ObjectInfo{
		Name: object, Size: size, DataFile: dataFile,
		MultipartMD5: base64.StdEncoding.EncodeToString(sum[:]) + "-" + strconv.Itoa(len(sorted)),
	}
	setAttrs(info, u.Attrs)
	if err := s.commitObject(ns, bucket, info, ifMatch, ifNoneMatch); err != nil {
		os.Remove(filepath.Join(bdir, "d", dataFile))
		return nil, err
	}
	s.removeUpload(ns, bucket, uploadID, have)
	return info, nil
}

// AbortUpload ends an upload and discards its parts.
func (s *Store) AbortUpload(ctx context.Context, ns, bucket, object, uploadID string) error {
	if _, err := s.GetUpload(ctx, ns, bucket, object, uploadID); err != nil {
		return err
	}
	parts, err := s.ListParts(ctx, ns, bucket, object, uploadID)
	if err != nil {
		return err
	}
	s.removeUpload(ns, bucket, uploadID, parts)
	return nil
}

func (s *Store) removeUpload(ns, bucket, uploadID string, parts []*Part) {
	unlock := s.lock(ns, bucket)
	defer unlock()
	dir, _ := s.uploadDir(ns, bucket, uploadID)
	os.Remove(filepath.Join(dir, "upload.json"))
	for _, p := range parts {
		os.Remove(filepath.Join(s.root, ns, bucket, "d", p.DataFile))
	}
	os.RemoveAll(dir)
}

// ListUploads lists a bucket's multipart uploads in progress, oldest first.
func (s *Store) ListUploads(ctx context.Context, ns, bucket string) ([]*Upload, error) {
	if _, err := s.GetBucket(ctx, ns, bucket); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, ns, bucket, "u"))
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var out []*Upload
	for _, e := range entries {
		var u Upload
		if err := readJSON(filepath.Join(s.root, ns, bucket, "u", e.Name(), "upload.json"), &u); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // being created or removed
			}
			return nil, err
		}
		out = append(out, &u)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].TimeCreated.Equal(out[j].TimeCreated) {
			return out[i].TimeCreated.Before(out[j].TimeCreated)
		}
		return out[i].UploadID < out[j].UploadID
	})
	return out, nil
}
