package api_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"

	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// declaredHeaders returns the lower-case names of the response type's
// fields tagged presentIn:"header".
func declaredHeaders(resp any) []string {
	var out []string
	t := reflect.TypeOf(resp)
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("presentIn") == "header" {
			out = append(out, strings.ToLower(f.Tag.Get("name")))
		}
	}
	sort.Strings(out)
	return out
}

// Headers every HTTP response may carry, whatever the SDK type declares.
var transportHeaders = []string{"content-type", "content-length", "date"}

// Declared headers sent only in some states: a next page, a work request
// still running, a deprecated base model.
var conditionalHeaders = []string{"opc-next-page", "retry-after", "model-deprecation-info"}

// TestResponseHeaders calls every Generative AI operation through the
// SDK and checks that the response carries exactly the headers its SDK
// response type declares (presentIn:"header"): each declared header is
// sent (unless conditional, see conditionalHeaders) and no other header
// but the transport's.
func TestResponseHeaders(t *testing.T) {
	s := startServer(t, false, nil)
	c := s.GenAI
	ctx := context.Background()
	ten := s.TenancyID
	comp := s.NewCompartment(t, ten, "moved")
	putDataset(t, s, "data", "train.jsonl")
	base := server.BaseModelID(server.DefaultBaseModelName)

	var cluster, model, wr *string
	type call struct {
		name string
		do   func() (any, error)
	}
	calls := []call{
		{"CreateDedicatedAiCluster", func() (any, error) {
			r, err := c.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
				Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: &ten, UnitCount: common.Int(1), UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere}})
			cluster, wr = r.Id, r.OpcWorkRequestId
			if err == nil {
				waitWR(t, c, *wr)
			}
			return r, err
		}},
		{"GetDedicatedAiCluster", func() (any, error) {
			return c.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: cluster})
		}},
		{"ListDedicatedAiClusters", func() (any, error) {
			return c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten})
		}},
		{"UpdateDedicatedAiCluster", func() (any, error) {
			r, err := c.UpdateDedicatedAiCluster(ctx, generativeai.UpdateDedicatedAiClusterRequest{DedicatedAiClusterId: cluster,
				UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{Description: common.String("d")}})
			if err == nil && r.OpcWorkRequestId != nil {
				waitWR(t, c, *r.OpcWorkRequestId)
			}
			return r, err
		}},
		{"CreateModel", func() (any, error) {
			r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: modelDetails(ten, base, *cluster, s.Namespace, "data", "train.jsonl", nil)})
			model, wr = r.Id, r.OpcWorkRequestId
			if err == nil {
				waitWR(t, c, *wr)
			}
			return r, err
		}},
		{"GetModel", func() (any, error) { return c.GetModel(ctx, generativeai.GetModelRequest{ModelId: model}) }},
		{"ListModels", func() (any, error) {
			return c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten})
		}},
		{"UpdateModel", func() (any, error) {
			return c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: model, UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("d")}})
		}},
		{"GetWorkRequest", func() (any, error) {
			return c.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: wr})
		}},
		{"ListWorkRequests", func() (any, error) {
			return c.ListWorkRequests(ctx, generativeai.ListWorkRequestsRequest{CompartmentId: &ten})
		}},
		{"ListWorkRequestLogs", func() (any, error) {
			return c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: wr})
		}},
		{"ListWorkRequestErrors", func() (any, error) {
			return c.ListWorkRequestErrors(ctx, generativeai.ListWorkRequestErrorsRequest{WorkRequestId: wr})
		}},
		{"ChangeModelCompartment", func() (any, error) {
			return c.ChangeModelCompartment(ctx, generativeai.ChangeModelCompartmentRequest{ModelId: model,
				ChangeModelCompartmentDetails: generativeai.ChangeModelCompartmentDetails{CompartmentId: &comp}})
		}},
		{"DeleteModel", func() (any, error) {
			r, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: model})
			if err == nil {
				waitWR(t, c, *r.OpcWorkRequestId)
			}
			return r, err
		}},
		{"ChangeDedicatedAiClusterCompartment", func() (any, error) {
			return c.ChangeDedicatedAiClusterCompartment(ctx, generativeai.ChangeDedicatedAiClusterCompartmentRequest{DedicatedAiClusterId: cluster,
				ChangeDedicatedAiClusterCompartmentDetails: generativeai.ChangeDedicatedAiClusterCompartmentDetails{CompartmentId: &comp}})
		}},
		{"DeleteDedicatedAiCluster", func() (any, error) {
			return c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: cluster})
		}},
	}
	for _, cl := range calls {
		resp, err := cl.do()
		if err != nil {
			t.Fatalf("%s: %v", cl.name, err)
		}
		sent := reflect.ValueOf(resp).FieldByName("RawResponse").Interface().(*http.Response).Header
		declared := declaredHeaders(resp)
		for _, h := range declared {
			if sent.Get(h) == "" && !slices.Contains(conditionalHeaders, h) {
				t.Errorf("%s: declared header %s not sent (sent %v)", cl.name, h, sent)
			}
		}
		for h := range sent {
			h = strings.ToLower(h)
			if !slices.Contains(declared, h) && !slices.Contains(transportHeaders, h) {
				t.Errorf("%s: header %s is not in the SDK's %T", cl.name, h, resp)
			}
		}
	}
}

// TestObjectStorageResponseHeaders is TestResponseHeaders for the Object
// Storage operations: no header outside the SDK response type, and
// opc-request-id and (where declared) etag always sent; the request ids
// are allowed everywhere. The other
// declared headers (content-md5, last-modified, version-id, ...) are
// many and partly optional in OCI, so their presence is left to the
// object storage tests.
func TestObjectStorageResponseHeaders(t *testing.T) {
	s := startServer(t, false, nil)
	o := s.ObjectStorage
	ctx := context.Background()
	ns, bucket, name := &s.Namespace, common.String("hdr"), common.String("a.txt")
	body := func(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
	var upload *string
	calls := []struct {
		name string
		do   func() (any, error)
	}{
		{"GetNamespace", func() (any, error) { return o.GetNamespace(ctx, objectstorage.GetNamespaceRequest{}) }},
		{"CreateBucket", func() (any, error) {
			return o.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: ns,
				CreateBucketDetails: objectstorage.CreateBucketDetails{Name: bucket, CompartmentId: &s.TenancyID}})
		}},
		{"GetBucket", func() (any, error) {
			return o.GetBucket(ctx, objectstorage.GetBucketRequest{NamespaceName: ns, BucketName: bucket})
		}},
		{"HeadBucket", func() (any, error) {
			return o.HeadBucket(ctx, objectstorage.HeadBucketRequest{NamespaceName: ns, BucketName: bucket})
		}},
		{"ListBuckets", func() (any, error) {
			return o.ListBuckets(ctx, objectstorage.ListBucketsRequest{NamespaceName: ns, CompartmentId: &s.TenancyID})
		}},
		{"PutObject", func() (any, error) {
			return o.PutObject(ctx, objectstorage.PutObjectRequest{NamespaceName: ns, BucketName: bucket, ObjectName: name,
				ContentLength: common.Int64(2), PutObjectBody: body("hi")})
		}},
		{"HeadObject", func() (any, error) {
			return o.HeadObject(ctx, objectstorage.HeadObjectRequest{NamespaceName: ns, BucketName: bucket, ObjectName: name})
		}},
		{"GetObject", func() (any, error) {
			r, err := o.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: ns, BucketName: bucket, ObjectName: name})
			if err == nil {
				r.Content.Close()
			}
			return r, err
		}},
		{"ListObjects", func() (any, error) {
			return o.ListObjects(ctx, objectstorage.ListObjectsRequest{NamespaceName: ns, BucketName: bucket})
		}},
		{"CreateMultipartUpload", func() (any, error) {
			r, err := o.CreateMultipartUpload(ctx, objectstorage.CreateMultipartUploadRequest{NamespaceName: ns, BucketName: bucket,
				CreateMultipartUploadDetails: objectstorage.CreateMultipartUploadDetails{Object: common.String("big")}})
			upload = r.UploadId
			return r, err
		}},
		{"UploadPart", func() (any, error) {
			return o.UploadPart(ctx, objectstorage.UploadPartRequest{NamespaceName: ns, BucketName: bucket, ObjectName: common.String("big"),
				UploadId: upload, UploadPartNum: common.Int(1), ContentLength: common.Int64(3), UploadPartBody: body("abc")})
		}},
		{"ListMultipartUploads", func() (any, error) {
			return o.ListMultipartUploads(ctx, objectstorage.ListMultipartUploadsRequest{NamespaceName: ns, BucketName: bucket})
		}},
		{"ListMultipartUploadParts", func() (any, error) {
			return o.ListMultipartUploadParts(ctx, objectstorage.ListMultipartUploadPartsRequest{NamespaceName: ns, BucketName: bucket,
				ObjectName: common.String("big"), UploadId: upload})
		}},
		{"AbortMultipartUpload", func() (any, error) {
			return o.AbortMultipartUpload(ctx, objectstorage.AbortMultipartUploadRequest{NamespaceName: ns, BucketName: bucket,
				ObjectName: common.String("big"), UploadId: upload})
		}},
		{"DeleteObject", func() (any, error) {
			return o.DeleteObject(ctx, objectstorage.DeleteObjectRequest{NamespaceName: ns, BucketName: bucket, ObjectName: name})
		}},
		{"DeleteBucket", func() (any, error) {
			return o.DeleteBucket(ctx, objectstorage.DeleteBucketRequest{NamespaceName: ns, BucketName: bucket})
		}},
	}
	for _, cl := range calls {
		resp, err := cl.do()
		if err != nil {
			t.Fatalf("%s: %v", cl.name, err)
		}
		sent := reflect.ValueOf(resp).FieldByName("RawResponse").Interface().(*http.Response).Header
		declared := declaredHeaders(resp)
		for _, h := range []string{"opc-request-id", "etag"} {
			if slices.Contains(declared, h) && sent.Get(h) == "" {
				t.Errorf("%s: declared header %s not sent (sent %v)", cl.name, h, sent)
			}
		}
		for h := range sent {
			h = strings.ToLower(h)
			// GetNamespaceResponse declares no header at all, yet OCI
			// answers every request with its request ids.
			universal := h == "opc-request-id" || h == "opc-client-request-id"
			if !slices.Contains(declared, h) && !slices.Contains(transportHeaders, h) && !universal {
				t.Errorf("%s: header %s is not in the SDK's %T", cl.name, h, resp)
			}
		}
	}
}

// TestModelDeprecationInfo: CreateModel on a base model whose
// timeDeprecated has passed answers model-deprecation-info naming it; on
// a current base model it does not; a replay by retry token answers the same.
func TestModelDeprecationInfo(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, name := range []string{server.DefaultBaseModelName, "old-base"} {
		if err := server.InstallTinyBaseModel(ctx, filepath.Join(dir, server.BaseModelsDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, server.BaseModelsDir, "old-base", server.CatalogFile), `{"displayName":"old-base","timeDeprecated":"2020-01-02T03:04:05Z"}`)
	s := servertest.Start(t, servertest.Options{DataDir: dir})
	c := s.GenAI
	putDataset(t, s, "data", "train.jsonl")
	ft := createCluster(t, c, s.TenancyID, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 2)
	for _, tc := range []struct {
		base, want string
	}{
		{server.DefaultBaseModelName, ""},
		{"old-base", "old-base"},
	} {
		// The second call replays the first (same retry token and body).
		for range 2 {
			r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{OpcRetryToken: common.String("tok-" + tc.base),
				CreateModelDetails: modelDetails(s.TenancyID, server.BaseModelID(tc.base), *ft.Id, s.Namespace, "data", "train.jsonl", nil)})
			if err != nil {
				t.Fatalf("CreateModel on %s: %v", tc.base, err)
			}
			got := deref(r.ModelDeprecationInfo)
			if tc.want == "" && got != "" || tc.want != "" && (!strings.Contains(got, tc.want) || !strings.Contains(got, "2020-01-02T03:04:05Z")) {
				t.Errorf("CreateModel on %s: model-deprecation-info %q", tc.base, got)
			}
		}
	}
}
