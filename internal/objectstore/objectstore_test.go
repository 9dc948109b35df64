package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateBucket(ctx, &Bucket{Namespace: "ns1", Name: "data", CompartmentID: "c1"}); err != nil {
		t.Fatal(err)
	}
	return s, ctx
}

func md5b64(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func readAll(t *testing.T, s *Store, ns, b, name string) string {
	t.Helper()
	o, err := s.OpenObject(context.Background(), ns, b, name)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestPutGetOverwrite(t *testing.T) {
	s, ctx := newStore(t)
	info, err := s.PutObject(ctx, "ns1", "data", "dir/a.jsonl", strings.NewReader("hello"), PutOptions{ContentMD5: md5b64([]byte("hello")), ObjectAttrs: ObjectAttrs{Metadata: map[string]string{"K": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 5 || info.MD5 != md5b64([]byte("hello")) || info.ETag == "" || info.Metadata["k"] != "v" {
		t.Fatalf("info %+v", info)
	}
	old, err := s.OpenObject(ctx, "ns1", "data", "dir/a.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	info2, err := s.PutObject(ctx, "ns1", "data", "dir/a.jsonl", strings.NewReader("bye"), PutOptions{IfMatch: info.ETag})
	if err != nil {
		t.Fatal(err)
	}
	if info2.ETag == info.ETag {
		t.Error("ETag did not change on overwrite")
	}
	if got := readAll(t, s, "ns1", "data", "dir/a.jsonl"); got != "bye" {
		t.Errorf("read %q after overwrite", got)
	}
	if data, _ := io.ReadAll(old); string(data) != "hello" {
		t.Errorf("reader opened before overwrite read %q", data)
	}
	// Only the current version's data is left on disk.
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "ns1", "data", "d")); len(ents) != 1 {
		t.Errorf("%d data files after overwrite, want 1", len(ents))
	}
	// Reopening the store sees the same object.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s2, "ns1", "data", "dir/a.jsonl"); got != "bye" {
		t.Errorf("after reopen read %q", got)
	}
}

func TestPutErrors(t *testing.T) {
	s, ctx := newStore(t)
	if _, err := s.PutObject(ctx, "ns1", "data", "x", strings.NewReader("one"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ns, bucket, object, body string
		opts                           PutOptions
		want                           error
	}{
		{"md5 mismatch", "ns1", "data", "y", "abc", PutOptions{ContentMD5: md5b64([]byte("abd"))}, ErrContentMD5},
		{"size mismatch", "ns1", "data", "y", "abc", PutOptions{Size: 4}, ErrSizeMismatch},
		{"if-none-match *", "ns1", "data", "x", "two", PutOptions{IfNoneMatch: "*"}, ErrPrecondition},
		{"if-match wrong", "ns1", "data", "x", "two", PutOptions{IfMatch: "nope"}, ErrPrecondition},
		{"if-match absent", "ns1", "data", "new", "two", PutOptions{IfMatch: "nope"}, ErrPrecondition},
		{"no bucket", "ns1", "nobucket", "x", "two", PutOptions{}, ErrBucketNotFound},
		{"traversal", "ns1", "data", "../../etc/passwd", "x", PutOptions{}, ErrInvalidName},
		{"dot segment", "ns1", "data", "a/./b", "x", PutOptions{}, ErrInvalidName},
		{"empty name", "ns1", "data", "", "x", PutOptions{}, ErrInvalidName},
		{"long name", "ns1", "data", strings.Repeat("a", 1025), "x", PutOptions{}, ErrInvalidName},
		{"bad bucket", "ns1", "../x", "a", "x", PutOptions{}, ErrInvalidName},
		{"bad namespace", "../..", "data", "a", "x", PutOptions{}, ErrInvalidName},
	}
	for _, c := range cases {
		_, err := s.PutObject(ctx, c.ns, c.bucket, c.object, strings.NewReader(c.body), c.opts)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
	if got := readAll(t, s, "ns1", "data", "x"); got != "one" {
		t.Errorf("failed puts changed x to %q", got)
	}
	if _, err := s.HeadObject(ctx, "ns1", "data", "y"); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("rejected put left object y: %v", err)
	}
	// A reader failing mid-way (a body hash mismatch) leaves nothing behind.
	boom := errors.New("boom")
	_, err := s.PutObject(ctx, "ns1", "data", "x", io.MultiReader(strings.NewReader("partial"), errReader{boom}), PutOptions{})
	if !errors.Is(err, boom) {
		t.Errorf("failing reader: %v", err)
	}
	if got := readAll(t, s, "ns1", "data", "x"); got != "one" {
		t.Errorf("failing reader changed x to %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "ns1", "data", "tmp")); len(ents) != 0 {
		t.Errorf("%d temporary files left", len(ents))
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestBuckets(t *testing.T) {
	s, ctx := newStore(t)
	if err := s.CreateBucket(ctx, &Bucket{Namespace: "ns1", Name: "data"}); !errors.Is(err, ErrBucketExists) {
		t.Errorf("duplicate bucket: %v", err)
	}
	if err := s.CreateBucket(ctx, &Bucket{Namespace: "ns1", Name: "other", CompartmentID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if bs, _ := s.ListBuckets(ctx, "ns1", "c1"); len(bs) != 1 || bs[0].Name != "data" {
		t.Errorf("ListBuckets c1: %v", bs)
	}
	if bs, _ := s.ListBuckets(ctx, "ns2", ""); len(bs) != 0 {
		t.Errorf("ListBuckets of an empty namespace: %v", bs)
	}
	s.PutObject(ctx, "ns1", "data", "a", strings.NewReader("x"), PutOptions{})
	if err := s.DeleteBucket(ctx, "ns1", "data", ""); !errors.Is(err, ErrBucketNotEmpty) {
		t.Errorf("delete non-empty bucket: %v", err)
	}
	b, _ := s.GetBucket(ctx, "ns1", "other")
	if err := s.DeleteBucket(ctx, "ns1", "other", "wrong"); !errors.Is(err, ErrPrecondition) {
		t.Errorf("delete with wrong if-match: %v", err)
	}
	if err := s.DeleteBucket(ctx, "ns1", "other", b.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBucket(ctx, "ns1", "other"); !errors.Is(err, ErrBucketNotFound) {
		t.Errorf("deleted bucket: %v", err)
	}
	if err := s.DeleteObject(ctx, "ns1", "data", "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteObject(ctx, "ns1", "data", "a", ""); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := s.DeleteBucket(ctx, "ns1", "data", ""); err != nil {
		t.Errorf("delete emptied bucket: %v", err)
	}
}

func TestListObjects(t *testing.T) {
	s, ctx := newStore(t)
	names := []string{"a", "b/1", "b/2", "b/c/3", "c", "d/1"}
	for _, n := range names {
		if _, err := s.PutObject(ctx, "ns1", "data", n, strings.NewReader(n), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	objNames := func(r *ListResult) string {
		var out []string
		for _, o := range r.Objects {
			out = append(out, o.Name)
		}
		return strings.Join(out, ",") + "|" + strings.Join(r.Prefixes, ",") + "|" + r.NextStartWith
	}
	cases := []struct {
		opts ListOptions
		want string
	}{
		{ListOptions{}, "a,b/1,b/2,b/c/3,c,d/1||"},
		{ListOptions{Prefix: "b/"}, "b/1,b/2,b/c/3||"},
		{ListOptions{Delimiter: "/"}, "a,c|b/,d/|"},
		{ListOptions{Prefix: "b/", Delimiter: "/"}, "b/1,b/2|b/c/|"},
		{ListOptions{Limit: 2}, "a,b/1||b/2"},
		{ListOptions{Start: "b/2", Limit: 2}, "b/2,b/c/3||c"},
		{ListOptions{StartAfter: "b/2", End: "d"}, "b/c/3,c||"},
		{ListOptions{Delimiter: "/", Limit: 2}, "a|b/|c"},
	}
	for _, c := range cases {
		r, err := s.ListObjects(ctx, "ns1", "data", c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := objNames(r); got != c.want {
			t.Errorf("ListObjects(%+v) = %s, want %s", c.opts, got, c.want)
		}
	}
}

func TestMultipart(t *testing.T) {
	s, ctx := newStore(t)
	u := &Upload{Namespace: "ns1", Bucket: "data", Object: "big.bin", Attrs: ObjectAttrs{ContentType: "application/x-test"}}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000), []byte("tail")}
	var commit []CommitPart
	var md5s []byte
	// Upload out of order and concurrently.
	var wg sync.WaitGroup
	results := make([]*Part, len(parts))
	for i := len(parts) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p, err := s.UploadPart(ctx, "ns1", "data", "big.bin", u.UploadID, i+1, bytes.NewReader(parts[i]), md5b64(parts[i]), int64(len(parts[i])))
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = p
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, p := range results {
		commit = append(commit, CommitPart{PartNum: i + 1, ETag: p.ETag})
		sum := md5.Sum(parts[i])
		md5s = append(md5s, sum[:]...)
	}
	// An extra part that is not committed is discarded.
	if _, err := s.UploadPart(ctx, "ns1", "data", "big.bin", u.UploadID, 9, strings.NewReader("junk"), "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadPart(ctx, "ns1", "data", "big.bin", u.UploadID, 0, strings.NewReader("x"), "", 0); !errors.Is(err, ErrInvalidPart) {
		t.Errorf("part 0: %v", err)
	}
	if _, err := s.UploadPart(ctx, "ns1", "data", "other", u.UploadID, 1, strings.NewReader("x"), "", 0); !errors.Is(err, ErrUploadNotFound) {
		t.Errorf("part of another object's upload: %v", err)
	}
	if ps, _ := s.ListParts(ctx, "ns1", "data", "big.bin", u.UploadID); len(ps) != 4 || ps[3].PartNumber != 9 {
		t.Errorf("ListParts: %d parts", len(ps))
	}
	bad := append([]CommitPart(nil), commit...)
	bad[1].ETag = "wrong"
	if _, err := s.CommitUpload(ctx, "ns1", "data", "big.bin", u.UploadID, bad, "", ""); !errors.Is(err, ErrInvalidPart) {
		t.Errorf("commit with a wrong ETag: %v", err)
	}
	info, err := s.CommitUpload(ctx, "ns1", "data", "big.bin", u.UploadID, commit, "", "")
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(md5s)
	if want := base64.StdEncoding.EncodeToString(sum[:]) + "-3"; info.MultipartMD5 != want {
		t.Errorf("multipart MD5 %s, want %s", info.MultipartMD5, want)
	}
	want := string(bytes.Join(parts, nil))
	if got := readAll(t, s, "ns1", "data", "big.bin"); got != want || info.Size != int64(len(want)) || info.ContentType != "application/x-test" {
		t.Errorf("assembled object: %d bytes, info %+v", len(got), info)
	}
	if _, err := s.GetUpload(ctx, "ns1", "data", "big.bin", u.UploadID); !errors.Is(err, ErrUploadNotFound) {
		t.Errorf("upload still there after commit: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "ns1", "data", "d")); len(ents) != 1 {
		t.Errorf("%d data files after commit, want 1", len(ents))
	}
	// Abort.
	u2 := &Upload{Namespace: "ns1", Bucket: "data", Object: "x"}
	s.CreateUpload(ctx, u2)
	s.UploadPart(ctx, "ns1", "data", "x", u2.UploadID, 1, strings.NewReader("x"), "", 0)
	if err := s.DeleteBucket(ctx, "ns1", "data", ""); !errors.Is(err, ErrBucketNotEmpty) {
		t.Errorf("delete bucket during upload: %v", err)
	}
	if err := s.AbortUpload(ctx, "ns1", "data", "x", u2.UploadID); err != nil {
		t.Fatal(err)
	}
	if err := s.AbortUpload(ctx, "ns1", "data", "x", u2.UploadID); !errors.Is(err, ErrUploadNotFound) {
		t.Errorf("second abort: %v", err)
	}
	if _, err := s.GetUpload(ctx, "ns1", "data", "x", "../../etc"); !errors.Is(err, ErrUploadNotFound) {
		t.Errorf("traversing upload id: %v", err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, ctx := newStore(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf("writer %d", i)
			if _, err := s.PutObject(ctx, "ns1", "data", "same", strings.NewReader(body), PutOptions{}); err != nil {
				t.Error(err)
			}
			if o, err := s.OpenObject(ctx, "ns1", "data", "same"); err == nil {
				data, _ := io.ReadAll(o)
				o.Close()
				if !strings.HasPrefix(string(data), "writer ") || len(data) != len(body) {
					t.Errorf("torn read %q", data)
				}
			} else {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "ns1", "data", "d")); len(ents) != 1 {
		t.Errorf("%d data files after concurrent puts, want 1", len(ents))
	}
}

// BenchmarkPutObject measures streaming a 16 MiB object to disk.
func BenchmarkPutObject(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s.CreateBucket(ctx, &Bucket{Namespace: "ns", Name: "b"})
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.PutObject(ctx, "ns", "b", "obj", bytes.NewReader(data), PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenRemovesTemporaries checks that a write interrupted by a crash
// (a temporary file left in tmp/, no longer locked by its writer) is
// cleaned up on the next Open and never becomes visible, and that a write
// in progress (its temporary file still locked, as another process sharing
// the root would hold it) is left alone.
func TestOpenRemovesTemporaries(t *testing.T) {
	s, ctx := newStore(t)
	dir := filepath.Join(s.Root(), "ns1", "data", "tmp")
	tmp := filepath.Join(dir, "data-123")
	if err := os.WriteFile(tmp, []byte("half-written"), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err := createTemp(dir, "data-*")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("abandoned temporary file survived Open: %v", err)
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Errorf("temporary file of a write in progress was removed: %v", err)
	}
	r, err := s2.ListObjects(ctx, "ns1", "data", ListOptions{})
	if err != nil || len(r.Objects) != 0 {
		t.Errorf("objects after a crashed write: %v %v", r, err)
	}
}
