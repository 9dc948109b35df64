package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/oracle/oci-go-sdk/v65/objectstorage/transfer"
)

// SplitObjectPath splits "bucket/object/name" into the bucket and the
// object name (which may contain slashes).
func SplitObjectPath(p string) (bucket, object string) {
	b, o, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return b, o
}

// PutParams tune an upload.
type PutParams struct {
	// PartSize is the multipart part size in bytes; 0 means the SDK's
	// default (128 MiB). Files larger than it go up in parts.
	PartSize    int64
	ContentType string
	Metadata    map[string]string // without the opc-meta- prefix
}

// PutFile uploads a local file (or stdin, "-") to bucket/object through
// the SDK's UploadManager, in parts when it is larger than the part size.
// An empty object name means the file's base name.
func (c *Client) PutFile(ctx context.Context, file, bucket, object string, p PutParams) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	if object == "" {
		if file == "-" {
			return fmt.Errorf("an object name is needed to upload stdin")
		}
		object = filepath.Base(file)
	}
	meta := map[string]string{}
	for k, v := range p.Metadata {
		meta["opc-meta-"+strings.TrimPrefix(k, "opc-meta-")] = v
	}
	req := transfer.UploadRequest{
		NamespaceName: &ns, BucketName: &bucket, ObjectName: &object,
		ObjectStorageClient: &c.OS, Metadata: meta,
		EnableMultipartChecksumVerification: common.Bool(true),
	}
	if p.PartSize > 0 {
		req.PartSize = &p.PartSize
	}
	if p.ContentType != "" {
		req.ContentType = &p.ContentType
	}
	um := transfer.NewUploadManager()
	var resp transfer.UploadResponse
	if file == "-" {
		// Hide the *os.File: the SDK takes a pipe's zero Stat size for an
		// empty stream and would upload nothing.
		stdin := struct{ io.Reader }{os.Stdin}
		resp, err = um.UploadStream(ctx, transfer.UploadStreamRequest{UploadRequest: req, StreamReader: stdin})
	} else {
		resp, err = um.UploadFile(ctx, transfer.UploadFileRequest{UploadRequest: req, FilePath: file})
	}
	if err != nil {
		return wrap(fmt.Sprintf("upload %s to %s/%s", file, bucket, object), err)
	}
	out := map[string]any{"namespace": ns, "bucket": bucket, "name": object}
	if r := resp.SinglepartUploadResponse; r != nil {
		out["etag"], out["md5"] = deref(r.ETag), deref(r.OpcContentMd5)
	}
	if r := resp.MultipartUploadResponse; r != nil {
		out["etag"], out["md5"] = deref(r.ETag), deref(r.OpcMultipartMd5)
	}
	return Print(c.out(), c.Format, out, nil)
}

// GetFile downloads bucket/object to file ("-" or "": Out).
func (c *Client) GetFile(ctx context.Context, bucket, object, file string) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	if file != "" && file != "-" {
		return c.getObjectToFile(ctx, ns, bucket, object, file)
	}
	r, err := c.OS.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &ns, BucketName: &bucket, ObjectName: &object})
	if err != nil {
		return wrap(fmt.Sprintf("get object %s", object), err)
	}
	defer r.Content.Close()
	_, err = io.Copy(c.out(), r.Content)
	return err
}

// ListObjects prints the objects of a bucket under prefix (all pages),
// with their size, md5, etag and times.
func (c *Client) ListObjects(ctx context.Context, bucket, prefix, delimiter string) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	req := objectstorage.ListObjectsRequest{NamespaceName: &ns, BucketName: &bucket, Limit: intPtr(1000),
		Fields: common.String("name,size,etag,md5,timeCreated,timeModified")}
	if prefix != "" {
		req.Prefix = &prefix
	}
	if delimiter != "" {
		req.Delimiter = &delimiter
	}
	objects := []objectstorage.ObjectSummary{}
	var prefixes []string
	for {
		r, err := c.OS.ListObjects(ctx, req)
		if err != nil {
			return wrap(fmt.Sprintf("list objects in %s", bucket), err)
		}
		objects = append(objects, r.Objects...)
		prefixes = append(prefixes, r.Prefixes...)
		if r.NextStartWith == nil || *r.NextStartWith == "" {
			break
		}
		req.Start = r.NextStartWith
	}
	if c.Format == "table" {
		return Print(c.out(), c.Format, objects, nil)
	}
	out := map[string]any{"objects": objects}
	if len(prefixes) > 0 {
		out["prefixes"] = prefixes
	}
	return Print(c.out(), c.Format, out, nil)
}

// ListBuckets prints the buckets of a compartment ("": the tenancy).
func (c *Client) ListBuckets(ctx context.Context, compartmentID string) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	req := objectstorage.ListBucketsRequest{NamespaceName: &ns, CompartmentId: c.compartment(compartmentID)}
	items := []objectstorage.BucketSummary{}
	for {
		r, err := c.OS.ListBuckets(ctx, req)
		if err != nil {
			return wrap("list buckets", err)
		}
		items = append(items, r.Items...)
		if r.OpcNextPage == nil || *r.OpcNextPage == "" {
			break
		}
		req.Page = r.OpcNextPage
	}
	return Print(c.out(), c.Format, items, nil)
}

// MakeBucket creates a bucket in a compartment ("": the tenancy) and prints it.
func (c *Client) MakeBucket(ctx context.Context, name, compartmentID string) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	r, err := c.OS.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &ns, CreateBucketDetails: objectstorage.CreateBucketDetails{
		Name: &name, CompartmentId: c.compartment(compartmentID),
	}})
	if err != nil {
		return wrap(fmt.Sprintf("create bucket %s", name), err)
	}
	return Print(c.out(), c.Format, r.Bucket, map[string]string{"etag": deref(r.ETag)})
}

// DeleteObject deletes bucket/object.
func (c *Client) DeleteObject(ctx context.Context, bucket, object string) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	if _, err := c.OS.DeleteObject(ctx, objectstorage.DeleteObjectRequest{NamespaceName: &ns, BucketName: &bucket, ObjectName: &object}); err != nil {
		return wrap(fmt.Sprintf("delete object %s", object), err)
	}
	return nil
}

// DeleteBucket deletes an empty bucket.
func (c *Client) DeleteBucket(ctx context.Context, bucket string) error {
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	if _, err := c.OS.DeleteBucket(ctx, objectstorage.DeleteBucketRequest{NamespaceName: &ns, BucketName: &bucket}); err != nil {
		return wrap(fmt.Sprintf("delete bucket %s", bucket), err)
	}
	return nil
}
