package api_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/server/servertest"
	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/oracle/oci-go-sdk/v65/objectstorage/transfer"
)

// TestObjectStorageServer drives Object Storage on a real server (SQLite
// and PostgreSQL identities): compartments, tenancy isolation, an upload
// through transfer.UploadManager, and persistence across a restart.
func TestObjectStorageServer(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := servertest.Start(t, servertest.Options{Postgres: pg})
			c := s.ObjectStorage
			comp := s.NewCompartment(t, s.TenancyID, "datasets")
			if _, err := c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &s.Namespace, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("in-comp"), CompartmentId: &comp}}); err != nil {
				t.Fatal(err)
			}
			lb, err := c.ListBuckets(ctx, objectstorage.ListBucketsRequest{NamespaceName: &s.Namespace, CompartmentId: &comp})
			if err != nil || len(lb.Items) != 1 || *lb.Items[0].CompartmentId != comp {
				t.Errorf("ListBuckets in compartment: %+v %v", lb.Items, err)
			}
			if lb, err := c.ListBuckets(ctx, objectstorage.ListBucketsRequest{NamespaceName: &s.Namespace, CompartmentId: &s.TenancyID}); err != nil || len(lb.Items) != 0 {
				t.Errorf("ListBuckets in the root compartment: %+v %v", lb.Items, err)
			}

			data := bytes.Repeat([]byte("0123456789"), 300_000)
			path := filepath.Join(t.TempDir(), "d.bin")
			os.WriteFile(path, data, 0o644)
			if _, err := transfer.NewUploadManager().UploadFile(ctx, transfer.UploadFileRequest{
				UploadRequest: transfer.UploadRequest{NamespaceName: &s.Namespace, BucketName: common.String("in-comp"), ObjectName: common.String("a/b.bin"),
					PartSize: common.Int64(1 << 20), ObjectStorageClient: &c, EnableMultipartChecksumVerification: common.Bool(true)},
				FilePath: path,
			}); err != nil {
				t.Fatal(err)
			}

			// Another tenancy sees none of it.
			other := s.NewTenancy(t)
			oc := s.NewObjectStorageClient(t, other.Config)
			ns, err := oc.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
			if err != nil || *ns.Value != other.Namespace || other.Namespace == s.Namespace {
				t.Errorf("other tenancy's namespace %v %v", ns.Value, err)
			}
			_, err = oc.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &s.Namespace, BucketName: common.String("in-comp"), ObjectName: common.String("a/b.bin")})
			serviceErr(t, "other tenancy reads the object", err, 404, "NotAuthorizedOrNotFound")
			_, err = oc.ListBuckets(ctx, objectstorage.ListBucketsRequest{NamespaceName: &s.Namespace, CompartmentId: &comp})
			serviceErr(t, "other tenancy lists the buckets", err, 404, "NotAuthorizedOrNotFound")
			_, err = oc.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &other.Namespace, CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("x"), CompartmentId: &comp}})
			serviceErr(t, "other tenancy creates a bucket in a foreign compartment", err, 404, "NotAuthorizedOrNotFound")

			// A restart on the same data keeps the object.
			s.Stop()
			s2 := servertest.Start(t, servertest.Options{DataDir: s.DataDir, DatabaseURL: s.DatabaseURL})
			got, err := s2.ObjectStorage.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &s.Namespace, BucketName: common.String("in-comp"), ObjectName: common.String("a/b.bin")})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(got.Content)
			got.Content.Close()
			if !bytes.Equal(b, data) || got.OpcMultipartMd5 == nil || !strings.HasSuffix(*got.OpcMultipartMd5, "-3") {
				t.Errorf("after restart: %d bytes, multipart md5 %v", len(b), got.OpcMultipartMd5)
			}
		})
	}
}
