package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
)

// ModelListParams filter ListModels.
type ModelListParams struct {
	CompartmentID  string
	DisplayName    string
	LifecycleState string
	Vendor         string
	Capability     string
	ID             string
	Limit          int
	All            bool // follow opc-next-page to the end
}

// ListModels prints the models of a compartment (BASE models included).
func (c *Client) ListModels(ctx context.Context, p ModelListParams) error {
	req := generativeai.ListModelsRequest{CompartmentId: c.compartment(p.CompartmentID)}
	if p.DisplayName != "" {
		req.DisplayName = &p.DisplayName
	}
	if p.LifecycleState != "" {
		req.LifecycleState = generativeai.ModelLifecycleStateEnum(p.LifecycleState)
	}
	if p.Vendor != "" {
		req.Vendor = &p.Vendor
	}
	if p.Capability != "" {
		req.Capability = []generativeai.ModelCapabilityEnum{generativeai.ModelCapabilityEnum(p.Capability)}
	}
	if p.ID != "" {
		req.Id = &p.ID
	}
	if p.Limit > 0 {
		req.Limit = &p.Limit
	}
	var items []generativeai.ModelSummary
	for {
		r, err := c.GenAI.ListModels(ctx, req)
		if err != nil {
			return wrap("list models", err)
		}
		items = append(items, r.Items...)
		if !p.All || r.OpcNextPage == nil || *r.OpcNextPage == "" {
			break
		}
		req.Page = r.OpcNextPage
	}
	if items == nil {
		items = []generativeai.ModelSummary{}
	}
	return Print(c.out(), c.Format, items, nil)
}

// GetModel prints a model.
func (c *Client) GetModel(ctx context.Context, id string) error {
	r, err := c.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		return wrap(fmt.Sprintf("get model %s", id), err)
	}
	return Print(c.out(), c.Format, r.Model, map[string]string{"etag": deref(r.Etag)})
}

// TrainingParams are a fine-tuning method and the hyperparameters set on
// the command line; nil fields are left to the server's defaults.
type TrainingParams struct {
	Type                           string // LORA_TRAINING_CONFIG (default), TFEW_TRAINING_CONFIG, VANILLA_TRAINING_CONFIG; or lora, tfew, vanilla
	TotalTrainingEpochs            *int
	LearningRate                   *float64
	TrainingBatchSize              *int
	EarlyStoppingPatience          *int
	EarlyStoppingThreshold         *float64
	LogModelMetricsIntervalInSteps *int
	LoraR                          *int
	LoraAlpha                      *int
	LoraDropout                    *float64
	NumOfLastLayers                *int
}

// TrainingConfig builds the SDK's polymorphic training config.
func (t TrainingParams) TrainingConfig() (generativeai.TrainingConfig, error) {
	typ := strings.ToUpper(t.Type)
	switch typ {
	case "", "LORA":
		typ = "LORA_TRAINING_CONFIG"
	case "TFEW", "T-FEW":
		typ = "TFEW_TRAINING_CONFIG"
	case "VANILLA":
		typ = "VANILLA_TRAINING_CONFIG"
	}
	loraSet := t.LoraR != nil || t.LoraAlpha != nil || t.LoraDropout != nil
	if typ != "LORA_TRAINING_CONFIG" && loraSet {
		return nil, fmt.Errorf("--lora-r, --lora-alpha and --lora-dropout apply only to LoRA, not %s", typ)
	}
	if typ != "VANILLA_TRAINING_CONFIG" && t.NumOfLastLayers != nil {
		return nil, fmt.Errorf("--num-of-last-layers applies only to VANILLA_TRAINING_CONFIG, not %s", typ)
	}
	switch typ {
	case "LORA_TRAINING_CONFIG":
		return generativeai.LoraTrainingConfig{
			TotalTrainingEpochs: t.TotalTrainingEpochs, LearningRate: t.LearningRate, TrainingBatchSize: t.TrainingBatchSize,
			EarlyStoppingPatience: t.EarlyStoppingPatience, EarlyStoppingThreshold: t.EarlyStoppingThreshold,
			LogModelMetricsIntervalInSteps: t.LogModelMetricsIntervalInSteps,
			LoraR:                          t.LoraR, LoraAlpha: t.LoraAlpha, LoraDropout: t.LoraDropout,
		}, nil
	case "TFEW_TRAINING_CONFIG":
		return generativeai.TFewTrainingConfig{
			TotalTrainingEpochs: t.TotalTrainingEpochs, LearningRate: t.LearningRate, TrainingBatchSize: t.TrainingBatchSize,
			EarlyStoppingPatience: t.EarlyStoppingPatience, EarlyStoppingThreshold: t.EarlyStoppingThreshold,
			LogModelMetricsIntervalInSteps: t.LogModelMetricsIntervalInSteps,
		}, nil
	case "VANILLA_TRAINING_CONFIG":
		return generativeai.VanillaTrainingConfig{
			TotalTrainingEpochs: t.TotalTrainingEpochs, LearningRate: t.LearningRate, TrainingBatchSize: t.TrainingBatchSize,
			EarlyStoppingPatience: t.EarlyStoppingPatience, EarlyStoppingThreshold: t.EarlyStoppingThreshold,
			LogModelMetricsIntervalInSteps: t.LogModelMetricsIntervalInSteps, NumOfLastLayers: t.NumOfLastLayers,
		}, nil
	}
	return nil, fmt.Errorf("unknown training config type %q (want LORA_TRAINING_CONFIG, TFEW_TRAINING_CONFIG or VANILLA_TRAINING_CONFIG)", t.Type)
}

// ModelCreateParams describe a fine-tuning CreateModel.
type ModelCreateParams struct {
	CompartmentID string
	DisplayName   string
	Description   string
	Vendor        string
	Version       string
	BaseModelID   string
	ClusterID     string
	// Dataset is "namespace/bucket/object" or "bucket/object" (the
	// caller's namespace); the object name may contain slashes.
	Dataset     string
	Training    TrainingParams
	RetryToken  string
	Wait        bool
	FreeformTag map[string]string
}

// ParseDataset splits "[namespace/]bucket/object" against the caller's
// namespace ns: a first segment equal to ns is taken as the namespace.
func ParseDataset(spec, ns string) (namespace, bucket, object string, err error) {
	parts := strings.SplitN(spec, "/", 3)
	if len(parts) == 3 && parts[0] == ns {
		return parts[0], parts[1], parts[2], nil
	}
	b, o, ok := strings.Cut(spec, "/")
	if !ok || b == "" || o == "" {
		return "", "", "", fmt.Errorf("dataset %q is not [namespace/]bucket/object", spec)
	}
	return ns, b, o, nil
}

// CreateModel creates a custom model by fine-tuning and prints it; with
// Wait it waits for the work request and prints the final model.
func (c *Client) CreateModel(ctx context.Context, p ModelCreateParams) error {
	switch {
	case p.BaseModelID == "":
		return errors.New("--base-model-id is required")
	case p.ClusterID == "":
		return errors.New("--cluster-id is required")
	case p.Dataset == "":
		return errors.New("--dataset is required")
	}
	ns, err := c.Namespace(ctx)
	if err != nil {
		return err
	}
	dns, bucket, object, err := ParseDataset(p.Dataset, ns)
	if err != nil {
		return err
	}
	tc, err := p.Training.TrainingConfig()
	if err != nil {
		return err
	}
	d := generativeai.CreateModelDetails{
		CompartmentId: c.compartment(p.CompartmentID),
		BaseModelId:   &p.BaseModelID,
		FineTuneDetails: &generativeai.FineTuneDetails{
			TrainingDataset:      generativeai.ObjectStorageDataset{NamespaceName: &dns, BucketName: &bucket, ObjectName: &object},
			DedicatedAiClusterId: &p.ClusterID,
			TrainingConfig:       tc,
		},
		FreeformTags: p.FreeformTag,
	}
	for _, f := range []struct {
		dst **string
		v   string
	}{{&d.DisplayName, p.DisplayName}, {&d.Description, p.Description}, {&d.Vendor, p.Vendor}, {&d.Version, p.Version}} {
		if f.v != "" {
			v := f.v
			*f.dst = &v
		}
	}
	req := generativeai.CreateModelRequest{CreateModelDetails: d}
	if p.RetryToken != "" {
		req.OpcRetryToken = &p.RetryToken
	}
	r, err := c.GenAI.CreateModel(ctx, req)
	if err != nil {
		return wrap("create model", err)
	}
	if !p.Wait {
		return Print(c.out(), c.Format, r.Model, map[string]string{"etag": deref(r.Etag), "opc-work-request-id": deref(r.OpcWorkRequestId)})
	}
	return c.waitAndPrintModel(ctx, deref(r.Id), deref(r.OpcWorkRequestId))
}

func (c *Client) waitAndPrintModel(ctx context.Context, id, wrID string) error {
	wr, err := c.WaitWorkRequest(ctx, wrID)
	if err != nil {
		return err
	}
	g, err := c.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		return wrap(fmt.Sprintf("get model %s", id), err)
	}
	if err := Print(c.out(), c.Format, g.Model, map[string]string{"etag": deref(g.Etag)}); err != nil {
		return err
	}
	if wr.Status != generativeai.OperationStatusSucceeded {
		return fmt.Errorf("work request %s %s: %s", wrID, wr.Status, c.workRequestErrorText(ctx, wrID))
	}
	return nil
}

// ModelUpdateParams are the updatable fields; nil means unchanged.
type ModelUpdateParams struct {
	DisplayName, Description, Vendor, Version *string
	FreeformTags                              map[string]string
	IfMatch                                   string
}

// UpdateModel updates a model and prints it.
func (c *Client) UpdateModel(ctx context.Context, id string, p ModelUpdateParams) error {
	req := generativeai.UpdateModelRequest{ModelId: &id, UpdateModelDetails: generativeai.UpdateModelDetails{
		DisplayName: p.DisplayName, Description: p.Description, Vendor: p.Vendor, Version: p.Version, FreeformTags: p.FreeformTags,
	}}
	if p.IfMatch != "" {
		req.IfMatch = &p.IfMatch
	}
	r, err := c.GenAI.UpdateModel(ctx, req)
	if err != nil {
		return wrap(fmt.Sprintf("update model %s", id), err)
	}
	return Print(c.out(), c.Format, r.Model, map[string]string{"etag": deref(r.Etag)})
}

// DeleteModel deletes a model; with wait it waits for the work request
// and prints the model's final state.
func (c *Client) DeleteModel(ctx context.Context, id, ifMatch string, wait bool) error {
	req := generativeai.DeleteModelRequest{ModelId: &id}
	if ifMatch != "" {
		req.IfMatch = &ifMatch
	}
	r, err := c.GenAI.DeleteModel(ctx, req)
	if err != nil {
		return wrap(fmt.Sprintf("delete model %s", id), err)
	}
	if wait {
		return c.waitAndPrintModel(ctx, id, deref(r.OpcWorkRequestId))
	}
	fmt.Fprintf(c.errw(), "deleting model %s; work request %s\n", id, deref(r.OpcWorkRequestId))
	return nil
}

// ArtifactBucket is the bucket, in the tenancy's namespace, that holds
// custom models' artifacts under the prefix "<model OCID>/".
const ArtifactBucket = "gantry-models"

// DownloadModel writes every object under "<id>/" in the artifact bucket
// to dir, keeping the names below the prefix as relative paths. It
// returns the files written.
func (c *Client) DownloadModel(ctx context.Context, id, dir string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("--out is required")
	}
	ns, err := c.Namespace(ctx)
	if err != nil {
		return nil, err
	}
	prefix := id + "/"
	names, err := c.listAll(ctx, ns, ArtifactBucket, prefix)
	var se *ServiceError
	if errors.As(err, &se) && se.Code == "BucketNotFound" {
		names, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("model %s has no artifacts in bucket %s (is it a custom model that finished training?)", id, ArtifactBucket)
	}
	var written []string
	for _, name := range names {
		rel := strings.TrimPrefix(name, prefix)
		dst, err := safeJoin(dir, rel)
		if err != nil {
			return written, err
		}
		if err := c.getObjectToFile(ctx, ns, ArtifactBucket, name, dst); err != nil {
			return written, err
		}
		written = append(written, dst)
		fmt.Fprintf(c.errw(), "%s\n", dst)
	}
	return written, nil
}

// safeJoin joins a relative object path to dir, refusing names that would
// land outside it.
func safeJoin(dir, rel string) (string, error) {
	if rel == "" || strings.HasSuffix(rel, "/") {
		return "", fmt.Errorf("object name %q is not a file name", rel)
	}
	clean := filepath.Clean(filepath.FromSlash(rel))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("object name %q points outside the output directory", rel)
	}
	return filepath.Join(dir, clean), nil
}

func (c *Client) listAll(ctx context.Context, ns, bucket, prefix string) ([]string, error) {
	req := objectstorage.ListObjectsRequest{NamespaceName: &ns, BucketName: &bucket, Prefix: &prefix, Limit: intPtr(1000)}
	var names []string
	for {
		r, err := c.OS.ListObjects(ctx, req)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list objects in %s", bucket), err)
		}
		for _, o := range r.Objects {
			names = append(names, deref(o.Name))
		}
		if r.NextStartWith == nil || *r.NextStartWith == "" {
			return names, nil
		}
		req.Start = r.NextStartWith
	}
}

// getObjectToFile streams an object to path through a temporary file
// renamed into place when complete.
func (c *Client) getObjectToFile(ctx context.Context, ns, bucket, name, path string) error {
	r, err := c.OS.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: &ns, BucketName: &bucket, ObjectName: &name})
	if err != nil {
		return wrap(fmt.Sprintf("get object %s", name), err)
	}
	defer r.Content.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part*")
	if err != nil {
		return err
	}
	n, err := io.Copy(tmp, r.Content)
	if err == nil && r.ContentLength != nil && n != *r.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, *r.ContentLength)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return wrap(fmt.Sprintf("download %s", name), err)
	}
	return nil
}
