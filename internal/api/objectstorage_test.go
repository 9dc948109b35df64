package api_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server/servertest"
	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/oracle/oci-go-sdk/v65/objectstorage/transfer"
)

// osEnv is a running server's Object Storage endpoint with its first tenancy.
type osEnv struct {
	url     string
	dataDir string
	client  objectstorage.ObjectStorageClient
	ns      string
	tenancy string
}

// forBackends runs an Object Storage test against a real listening
// server on SQLite and on PostgreSQL: the objects live on disk, but
// namespaces, tenancies, compartments and keys come from the database.
func forBackends(t *testing.T, test func(t *testing.T, e *osEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Postgres: b.postgres})
			test(t, &osEnv{url: s.BaseURL, dataDir: s.DataDir, client: s.ObjectStorage, ns: s.Namespace, tenancy: s.TenancyID})
		})
	}
}

// serviceErr asserts err is an OCI service error with status and code.
func serviceErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	se, ok := common.IsServiceError(err)
	if !ok {
		t.Errorf("%s: error %v, want a service error %d %s", what, err, status, code)
		return
	}
	if se.GetHTTPStatusCode() != status || se.GetCode() != code {
		t.Errorf("%s: got %d %s (%s), want %d %s", what, se.GetHTTPStatusCode(), se.GetCode(), se.GetMessage(), status, code)
	}
	if se.GetOpcRequestID() == "" {
		t.Errorf("%s: error without opc-request-id", what)
	}
}

func TestObjectStorageSDK(t *testing.T) { forBackends(t, testObjectStorageSDK) }

func testObjectStorageSDK(t *testing.T, e *osEnv) {
	ctx := context.Background()
	c := e.client

	ns, err := c.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if *ns.Value != e.ns {
		t.Fatalf("namespace %q, want %q", *ns.Value, e.ns)
	}
	if ns.RawResponse.Header.Get("opc-client-request-id") == "" {
		t.Error("GetNamespace does not echo opc-client-request-id")
	}

	cb, err := c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &e.ns, CreateBucketDetails: objectstorage.CreateBucketDetails{
		Name: common.String("datasets"), CompartmentId: &e.tenancy, Metadata: map[string]string{"purpose": "test"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if *cb.Name != "datasets" || cb.ETag == nil || *cb.ETag == "" || *cb.Namespace != e.ns {
		t.Errorf("CreateBucket: %+v", cb.Bucket)
	}
	_, err = c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &e.ns, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("datasets"), CompartmentId: &e.tenancy}})
	serviceErr(t, "duplicate bucket", err, 409, "BucketAlreadyExists")
	_, err = c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &e.ns, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("x"), CompartmentId: common.String("ocid1.compartment.oc1..other")}})
	serviceErr(t, "bucket in unknown compartment", err, 404, "NotAuthorizedOrNotFound")
	_, err = c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: common.String("othernamespace"), CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("x"), CompartmentId: &e.tenancy}})
	serviceErr(t, "bucket in another namespace", err, 404, "NotAuthorizedOrNotFound")

	gb, err := c.GetBucket(ctx, objectstorage.GetBucketRequest{NamespaceName: &e.ns, BucketName: common.String("datasets")})
	if err != nil || gb.Metadata["purpose"] != "test" || *gb.ETag != *cb.ETag {
		t.Errorf("GetBucket: %+v %v", gb, err)
	}
	_, err = c.GetBucket(ctx, objectstorage.GetBucketRequest{NamespaceName: &e.ns, BucketName: common.String("nope")})
	serviceErr(t, "missing bucket", err, 404, "BucketNotFound")
	lb, err := c.ListBuckets(ctx, objectstorage.ListBucketsRequest{NamespaceName: &e.ns, CompartmentId: &e.tenancy})
	if err != nil || len(lb.Items) != 1 || *lb.Items[0].Name != "datasets" {
		t.Errorf("ListBuckets: %+v %v", lb.Items, err)
	}

	// Put, head, get, ranges, conditions.
	body := `{"prompt":"a","completion":"b"}` + "\n"
	sum := md5.Sum([]byte(body))
	md5b64 := base64.StdEncoding.EncodeToString(sum[:])
	put, err := c.PutObject(ctx, objectstorage.PutObjectRequest{
		NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("train/data.jsonl"),
		ContentLength: common.Int64(int64(len(body))), PutObjectBody: io.NopCloser(strings.NewReader(body)),
		ContentMD5: &md5b64, ContentType: common.String("application/jsonl"), OpcMeta: map[string]string{"source": "unit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if *put.OpcContentMd5 != md5b64 || put.ETag == nil {
		t.Errorf("PutObject: md5 %v etag %v", put.OpcContentMd5, put.ETag)
	}
	bad := base64.StdEncoding.EncodeToString(make([]byte, 16))
	_, err = c.PutObject(ctx, objectstorage.PutObjectRequest{
		NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("bad"),
		ContentLength: common.Int64(3), PutObjectBody: io.NopCloser(strings.NewReader("abc")), ContentMD5: &bad,
	})
	serviceErr(t, "wrong Content-MD5", err, 400, "UnmatchedContentMD5")
	_, err = c.PutObject(ctx, objectstorage.PutObjectRequest{
		NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("train/data.jsonl"),
		ContentLength: common.Int64(3), PutObjectBody: io.NopCloser(strings.NewReader("abc")), IfNoneMatch: common.String("*"),
	})
	serviceErr(t, "if-none-match on existing", err, 412, "IfNoneMatchFailed")

	head, err := c.HeadObject(ctx, objectstorage.HeadObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("train/data.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if *head.ContentLength != int64(len(body)) || *head.ContentMd5 != md5b64 || *head.ETag != *put.ETag || head.OpcMeta["source"] != "unit" || *head.ContentType != "application/jsonl" {
		t.Errorf("HeadObject: len %v md5 %v meta %v type %v", *head.ContentLength, *head.ContentMd5, head.OpcMeta, *head.ContentType)
	}
	get, err := c.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("train/data.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Content)
	get.Content.Close()
	if string(got) != body {
		t.Errorf("GetObject: %q", got)
	}
	rg, err := c.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("train/data.jsonl"), Range: common.String("bytes=2-7")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rg.Content)
	rg.Content.Close()
	if string(got) != body[2:8] || *rg.ContentRange != fmt.Sprintf("bytes 2-7/%d", len(body)) {
		t.Errorf("range read %q, content-range %v", got, *rg.ContentRange)
	}
	_, err = c.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("nope")})
	serviceErr(t, "missing object", err, 404, "ObjectNotFound")
	_, err = c.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("train/data.jsonl"), IfMatch: common.String("stale")})
	serviceErr(t, "get with stale if-match", err, 412, "IfMatchFailed")

	// Listing with fields, prefix, delimiter.
	for _, n := range []string{"train/more.jsonl", "val/data.jsonl", "top.txt"} {
		if _, err := c.PutObject(ctx, objectstorage.PutObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: &n,
			ContentLength: common.Int64(1), PutObjectBody: io.NopCloser(strings.NewReader("x"))}); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := c.ListObjects(ctx, objectstorage.ListObjectsRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), Delimiter: common.String("/"), Fields: common.String("name,size,md5,etag,timeCreated")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lo.Objects) != 1 || *lo.Objects[0].Name != "top.txt" || *lo.Objects[0].Size != 1 || lo.Objects[0].TimeCreated == nil || strings.Join(lo.Prefixes, ",") != "train/,val/" {
		t.Errorf("ListObjects with delimiter: %+v %v", lo.Objects, lo.Prefixes)
	}
	lo, err = c.ListObjects(ctx, objectstorage.ListObjectsRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), Prefix: common.String("train/"), Limit: common.Int(1)})
	if err != nil || len(lo.Objects) != 1 || *lo.Objects[0].Name != "train/data.jsonl" || lo.NextStartWith == nil || *lo.NextStartWith != "train/more.jsonl" || lo.Objects[0].Size != nil {
		t.Errorf("ListObjects page: %+v next %v %v", lo.Objects, lo.NextStartWith, err)
	}

	_, err = c.DeleteBucket(ctx, objectstorage.DeleteBucketRequest{NamespaceName: &e.ns, BucketName: common.String("datasets")})
	serviceErr(t, "delete non-empty bucket", err, 409, "BucketNotEmpty")
	if _, err := c.DeleteObject(ctx, objectstorage.DeleteObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("top.txt")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteObject(ctx, objectstorage.DeleteObjectRequest{NamespaceName: &e.ns, BucketName: common.String("datasets"), ObjectName: common.String("top.txt")})
	serviceErr(t, "delete missing object", err, 404, "ObjectNotFound")
}

func TestObjectStorageUploadManager(t *testing.T) { forBackends(t, testObjectStorageUploadManager) }

func testObjectStorageUploadManager(t *testing.T, e *osEnv) {
	ctx := context.Background()
	c := e.client
	if _, err := c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &e.ns, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("up"), CompartmentId: &e.tenancy}}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	path := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	um := transfer.NewUploadManager()
	for _, tc := range []struct {
		name     string
		partSize int64
		parts    int
	}{
		{"multipart", 1 << 20, 4},
		{"single", 8 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := "models/" + tc.name + ".bin"
			resp, err := um.UploadFile(ctx, transfer.UploadFileRequest{
				UploadRequest: transfer.UploadRequest{
					NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj,
					PartSize: common.Int64(tc.partSize), ObjectStorageClient: &c,
					EnableMultipartChecksumVerification: common.Bool(true),
					Metadata:                            map[string]string{"opc-meta-kind": tc.name},
				},
				FilePath: path,
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.parts > 0 {
				if resp.MultipartUploadResponse == nil || resp.MultipartUploadResponse.OpcMultipartMd5 == nil || !strings.HasSuffix(*resp.MultipartUploadResponse.OpcMultipartMd5, fmt.Sprintf("-%d", tc.parts)) {
					t.Errorf("multipart response %+v", resp.MultipartUploadResponse)
				}
			}
			get, err := c.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(get.Content)
			get.Content.Close()
			if !bytes.Equal(got, data) {
				t.Errorf("downloaded %d bytes, differ from the %d uploaded", len(got), len(data))
			}
			if get.OpcMeta["kind"] != tc.name {
				t.Errorf("metadata %v", get.OpcMeta)
			}
			if (tc.parts > 0) != (get.OpcMultipartMd5 != nil) || (tc.parts == 0) != (get.ContentMd5 != nil) {
				t.Errorf("md5 headers: content-md5 %v multipart %v", get.ContentMd5, get.OpcMultipartMd5)
			}
		})
	}

	// Low-level multipart: list parts, wrong etag, abort.
	obj := "m.bin"
	cu, err := c.CreateMultipartUpload(ctx, objectstorage.CreateMultipartUploadRequest{NamespaceName: &e.ns, BucketName: common.String("up"),
		CreateMultipartUploadDetails: objectstorage.CreateMultipartUploadDetails{Object: &obj}})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadPart(ctx, objectstorage.UploadPartRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId,
		UploadPartNum: common.Int(1), ContentLength: common.Int64(5), UploadPartBody: io.NopCloser(strings.NewReader("hello"))})
	if err != nil {
		t.Fatal(err)
	}
	lu, err := c.ListMultipartUploads(ctx, objectstorage.ListMultipartUploadsRequest{NamespaceName: &e.ns, BucketName: common.String("up")})
	if err != nil || len(lu.Items) != 1 || *lu.Items[0].UploadId != *cu.UploadId || *lu.Items[0].Object != obj {
		t.Errorf("ListMultipartUploads: %+v %v", lu.Items, err)
	}
	_, err = c.UploadPart(ctx, objectstorage.UploadPartRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId,
		UploadPartNum: common.Int(2), ContentLength: common.Int64(1), UploadPartBody: io.NopCloser(strings.NewReader("x")), ContentMD5: common.String("not-md5")})
	serviceErr(t, "malformed Content-MD5", err, 400, "InvalidContentMD5")
	lp, err := c.ListMultipartUploadParts(ctx, objectstorage.ListMultipartUploadPartsRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId})
	if err != nil || len(lp.Items) != 1 || *lp.Items[0].Etag != *up.ETag || *lp.Items[0].Size != 5 {
		t.Errorf("ListMultipartUploadParts: %+v %v", lp.Items, err)
	}
	_, err = c.UploadPart(ctx, objectstorage.UploadPartRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId,
		UploadPartNum: common.Int(10001), ContentLength: common.Int64(1), UploadPartBody: io.NopCloser(strings.NewReader("x"))})
	serviceErr(t, "part number 10001", err, 400, "InvalidParameter")
	_, err = c.CommitMultipartUpload(ctx, objectstorage.CommitMultipartUploadRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId,
		CommitMultipartUploadDetails: objectstorage.CommitMultipartUploadDetails{PartsToCommit: []objectstorage.CommitMultipartUploadPartDetails{{PartNum: common.Int(1), Etag: common.String("wrong")}}}})
	serviceErr(t, "commit with wrong etag", err, 400, "InvalidParameter")
	if _, err := c.AbortMultipartUpload(ctx, objectstorage.AbortMultipartUploadRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AbortMultipartUpload(ctx, objectstorage.AbortMultipartUploadRequest{NamespaceName: &e.ns, BucketName: common.String("up"), ObjectName: &obj, UploadId: cu.UploadId})
	serviceErr(t, "abort twice", err, 404, "NoSuchUpload")
}

// TestObjectStorageAuth checks unsigned and tampered requests are refused
// and a streamed body whose signed hash is wrong stores nothing.
func TestObjectStorageAuth(t *testing.T) { forBackends(t, testObjectStorageAuth) }

func testObjectStorageAuth(t *testing.T, e *osEnv) {
	resp, err := http.Get(e.url + "/n/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("opc-request-id") == "" {
		t.Errorf("unsigned GetNamespace: %d, request id %q", resp.StatusCode, resp.Header.Get("opc-request-id"))
	}
	signer, err := auth.LoadSigner(auth.ConfigPath(e.dataDir), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.client.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &e.ns, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("b"), CompartmentId: &e.tenancy}}); err != nil {
		t.Fatal(err)
	}
	// A PUT of a large body that signs a wrong x-content-sha256.
	big := bytes.Repeat([]byte("z"), 5<<20)
	req, _ := http.NewRequest("PUT", e.url+"/n/"+e.ns+"/b/b/o/big", bytes.NewReader(big))
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := signer.Sign(req); err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(append(big[:len(big)-1:len(big)-1], 'y')))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("tampered streamed body: %d %s", resp.StatusCode, msg)
	}
	_, err = e.client.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("b"), ObjectName: common.String("big")})
	serviceErr(t, "object from a tampered body", err, 404, "ObjectNotFound")
	// HEAD answers have no body: the status alone says it.
	_, err = e.client.HeadObject(ctx, objectstorage.HeadObjectRequest{NamespaceName: &e.ns, BucketName: common.String("b"), ObjectName: common.String("big")})
	if se, ok := common.IsServiceError(err); !ok || se.GetHTTPStatusCode() != 404 {
		t.Errorf("HeadObject of a missing object: %v", err)
	}
}

// TestObjectStorageRange checks Range handling on GetObject with raw
// requests: suffix ranges, open ranges, clamping and unsatisfiable ones.
func TestObjectStorageRange(t *testing.T) { forBackends(t, testObjectStorageRange) }

func testObjectStorageRange(t *testing.T, e *osEnv) {
	ctx := context.Background()
	c := e.client
	if _, err := c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &e.ns, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("r"), CompartmentId: &e.tenancy}}); err != nil {
		t.Fatal(err)
	}
	body := "0123456789"
	if _, err := c.PutObject(ctx, objectstorage.PutObjectRequest{NamespaceName: &e.ns, BucketName: common.String("r"), ObjectName: common.String("x"),
		ContentLength: common.Int64(10), PutObjectBody: io.NopCloser(strings.NewReader(body))}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rng     string
		status  int
		content string
	}{
		{"bytes=0-0", 206, "0"},
		{"bytes=7-", 206, "789"},
		{"bytes=-3", 206, "789"},
		{"bytes=8-100", 206, "89"},
		{"bytes=-100", 206, body},
		{"bytes=10-", 416, ""},
		{"bytes=5-2", 416, ""},
		{"items=0-1", 416, ""},
	} {
		r, err := c.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &e.ns, BucketName: common.String("r"), ObjectName: common.String("x"), Range: &tc.rng})
		if tc.status == 416 {
			serviceErr(t, tc.rng, err, 416, "InvalidRange")
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.rng, err)
			continue
		}
		got, _ := io.ReadAll(r.Content)
		r.Content.Close()
		if r.RawResponse.StatusCode != tc.status || string(got) != tc.content {
			t.Errorf("%s: %d %q, want %d %q", tc.rng, r.RawResponse.StatusCode, got, tc.status, tc.content)
		}
	}
}
