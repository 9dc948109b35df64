package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/oracle/oci-go-sdk/v65/objectstorage/transfer"

	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// The conformance suite drives a real listening server through the
// oci-go-sdk Generative AI client with real signatures, on each store
// backend, and checks every operation and error class of the API. Raw
// signed requests are used only for what the SDK refuses to send.

var backends = []struct {
	name     string
	postgres bool
}{{"sqlite", false}, {"postgres", true}}

const chatOnlyModel = "chat-only"

// startServer starts a server whose catalog has the built-in base model
// and a model without FINE_TUNE.
func startServer(t *testing.T, postgres bool, trainer server.Trainer) *servertest.Server {
	t.Helper()
	dir := t.TempDir()
	if err := server.InstallTinyBaseModel(context.Background(), filepath.Join(dir, server.BaseModelsDir, server.DefaultBaseModelName)); err != nil {
		t.Fatal(err)
	}
	co := filepath.Join(dir, server.BaseModelsDir, chatOnlyModel)
	if err := os.MkdirAll(co, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(co, "config.json"), `{"model_type":"mistral","num_hidden_layers":4}`)
	write(t, filepath.Join(co, server.CatalogFile), `{"capabilities":["CHAT","TEXT_GENERATION"],"version":"7"}`)
	return servertest.Start(t, servertest.Options{Postgres: postgres, DataDir: dir, Trainer: trainer})
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// putDataset uploads a dataset object to the server's first namespace
// through the Object Storage SDK client (the bucket is made if needed).
func putDataset(t *testing.T, s *servertest.Server, bucket, name string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.ObjectStorage.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &s.Namespace,
		CreateBucketDetails: objectstorage.CreateBucketDetails{Name: &bucket, CompartmentId: &s.TenancyID}})
	if se, ok := common.IsServiceError(err); err != nil && !(ok && se.GetHTTPStatusCode() == 409) {
		t.Fatalf("CreateBucket: %v", err)
	}
	data := `{"prompt": "one", "completion": "1"}` + "\n" + `{"prompt": "two", "completion": "2"}` + "\n"
	if _, err := s.ObjectStorage.PutObject(ctx, objectstorage.PutObjectRequest{NamespaceName: &s.Namespace, BucketName: &bucket, ObjectName: &name,
		ContentLength: common.Int64(int64(len(data))), PutObjectBody: io.NopCloser(strings.NewReader(data))}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
}

// svcErr asserts err is an OCI service error with status and code, and
// that its message mentions each of words.
func svcErr(t *testing.T, err error, status int, code string, words ...string) {
	t.Helper()
	se, ok := common.IsServiceError(err)
	if !ok {
		t.Fatalf("want a %d %s service error, got %v", status, code, err)
	}
	if se.GetHTTPStatusCode() != status || se.GetCode() != code {
		t.Fatalf("want %d %s, got %d %s: %s", status, code, se.GetHTTPStatusCode(), se.GetCode(), se.GetMessage())
	}
	if se.GetOpcRequestID() == "" {
		t.Errorf("error %s has no opc-request-id", code)
	}
	for _, w := range words {
		if !strings.Contains(se.GetMessage(), w) {
			t.Errorf("message %q does not mention %q", se.GetMessage(), w)
		}
	}
}

// waitWR polls a work request until it is in a terminal status.
func waitWR(t *testing.T, c generativeai.GenerativeAiClient, id string) generativeai.WorkRequest {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.GetWorkRequest(context.Background(), generativeai.GetWorkRequestRequest{WorkRequestId: &id})
		if err != nil {
			t.Fatalf("GetWorkRequest: %v", err)
		}
		switch r.Status {
		case generativeai.OperationStatusSucceeded, generativeai.OperationStatusFailed, generativeai.OperationStatusCanceled:
			return r.WorkRequest
		}
		if time.Now().After(deadline) {
			t.Fatalf("work request %s still %s after 30s", id, r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createCluster(t *testing.T, c generativeai.GenerativeAiClient, compartment, name string, typ generativeai.DedicatedAiClusterTypeEnum, units int) generativeai.DedicatedAiCluster {
	t.Helper()
	r, err := c.CreateDedicatedAiCluster(context.Background(), generativeai.CreateDedicatedAiClusterRequest{
		CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
			Type: typ, CompartmentId: &compartment, UnitCount: common.Int(units),
			UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere, DisplayName: &name,
		},
	})
	if err != nil {
		t.Fatalf("CreateDedicatedAiCluster: %v", err)
	}
	if r.Etag == nil || r.OpcWorkRequestId == nil || r.OpcRequestId == nil {
		t.Fatalf("CreateDedicatedAiCluster headers: etag %v work request %v request id %v", r.Etag, r.OpcWorkRequestId, r.OpcRequestId)
	}
	if r.LifecycleState != generativeai.DedicatedAiClusterLifecycleStateCreating {
		t.Errorf("new cluster is %s, want CREATING", r.LifecycleState)
	}
	wr := waitWR(t, c, *r.OpcWorkRequestId)
	if wr.Status != generativeai.OperationStatusSucceeded || wr.OperationType != generativeai.OperationTypeCreateDedicatedAiCluster {
		t.Fatalf("cluster work request: %s %s", wr.OperationType, wr.Status)
	}
	g, err := c.GetDedicatedAiCluster(context.Background(), generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: r.Id})
	if err != nil {
		t.Fatal(err)
	}
	if g.LifecycleState != generativeai.DedicatedAiClusterLifecycleStateActive {
		t.Fatalf("cluster is %s after its work request, want ACTIVE", g.LifecycleState)
	}
	return g.DedicatedAiCluster
}

func modelDetails(compartment, base, cluster, ns, bucket, object string, tc generativeai.TrainingConfig) generativeai.CreateModelDetails {
	return generativeai.CreateModelDetails{
		CompartmentId: &compartment,
		BaseModelId:   &base,
		FineTuneDetails: &generativeai.FineTuneDetails{
			TrainingDataset:      generativeai.ObjectStorageDataset{NamespaceName: &ns, BucketName: &bucket, ObjectName: &object},
			DedicatedAiClusterId: &cluster,
			TrainingConfig:       tc,
		},
	}
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, b.postgres, nil)
			conformance(t, s)
		})
	}
}

func conformance(t *testing.T, s *servertest.Server) {
	ctx := context.Background()
	c := s.GenAI
	ten := s.TenancyID
	base := server.BaseModelID(server.DefaultBaseModelName)
	chatOnly := server.BaseModelID(chatOnlyModel)
	putDataset(t, s, "data", "train.jsonl")

	t.Run("BaseModels", func(t *testing.T) {
		r, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, m := range r.Items {
			if *m.Id == base {
				found = true
				if m.Type != generativeai.ModelTypeBase || m.LifecycleState != generativeai.ModelLifecycleStateActive || *m.CompartmentId != ten {
					t.Errorf("base model summary: %+v", m)
				}
				for _, want := range []generativeai.ModelCapabilityEnum{"FINE_TUNE", "TEXT_GENERATION", "CHAT"} {
					if !slices.Contains(m.Capabilities, want) {
						t.Errorf("base model lacks %s: %v", want, m.Capabilities)
					}
				}
				if *m.Vendor != "gantry" || *m.DisplayName != server.DefaultBaseModelName {
					t.Errorf("base model vendor %q name %q", *m.Vendor, *m.DisplayName)
				}
			}
		}
		if !found {
			t.Fatalf("ListModels lacks the default base model %s", base)
		}
		g, err := c.GetModel(ctx, generativeai.GetModelRequest{ModelId: &chatOnly})
		if err != nil {
			t.Fatal(err)
		}
		if *g.Vendor != "mistral" || *g.Version != "7" || slices.Contains(g.Capabilities, "FINE_TUNE") || g.Etag == nil || !*g.IsLongTermSupported {
			t.Errorf("chat-only base model: vendor %q version %q caps %v etag %v", *g.Vendor, *g.Version, g.Capabilities, g.Etag)
		}
		f, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Capability: []generativeai.ModelCapabilityEnum{"FINE_TUNE"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range f.Items {
			if *m.Id == chatOnly {
				t.Errorf("capability=FINE_TUNE lists the chat-only model")
			}
		}
		v, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Vendor: common.String("mistral")})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Items) != 1 || *v.Items[0].Id != chatOnly {
			t.Errorf("vendor=mistral lists %d models", len(v.Items))
		}
	})

	ft := createCluster(t, c, ten, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)
	hosting := createCluster(t, c, ten, "hosting", generativeai.DedicatedAiClusterTypeHosting, 1)

	t.Run("ClusterGetListUpdate", func(t *testing.T) {
		if hosting.Capacity == nil {
			t.Errorf("HOSTING cluster has no capacity")
		}
		u, err := c.UpdateDedicatedAiCluster(ctx, generativeai.UpdateDedicatedAiClusterRequest{
			DedicatedAiClusterId: hosting.Id,
			UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{
				UnitCount: common.Int(2), FreeformTags: map[string]string{"team": "a"},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if *u.UnitCount != 2 || u.FreeformTags["team"] != "a" || u.OpcWorkRequestId == nil || u.Etag == nil || *u.Etag == "" {
			t.Errorf("update: units %d tags %v wr %v", *u.UnitCount, u.FreeformTags, u.OpcWorkRequestId)
		}
		if wr := waitWR(t, c, *u.OpcWorkRequestId); wr.OperationType != generativeai.OperationTypeUpdateDedicatedAiCluster || wr.Status != generativeai.OperationStatusSucceeded {
			t.Errorf("update work request %s %s", wr.OperationType, wr.Status)
		}
		// A stale etag is a 412.
		_, err = c.UpdateDedicatedAiCluster(ctx, generativeai.UpdateDedicatedAiClusterRequest{
			DedicatedAiClusterId: hosting.Id, IfMatch: common.String(`"stale"`),
			UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{DisplayName: common.String("x")},
		})
		svcErr(t, err, 412, "PreconditionFailed")
		_, err = c.UpdateDedicatedAiCluster(ctx, generativeai.UpdateDedicatedAiClusterRequest{
			DedicatedAiClusterId: hosting.Id, IfMatch: u.Etag,
			UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{UnitCount: common.Int(0)},
		})
		svcErr(t, err, 400, "InvalidParameter", "unitCount")

		l, err := c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten, SortBy: generativeai.ListDedicatedAiClustersSortByDisplayname, SortOrder: generativeai.ListDedicatedAiClustersSortOrderAsc})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 2 || *l.Items[0].DisplayName != "ft" || *l.Items[1].DisplayName != "hosting" {
			t.Errorf("clusters by name: %v", names(l.Items, func(c generativeai.DedicatedAiClusterSummary) string { return *c.DisplayName }))
		}
		l, err = c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten, DisplayName: common.String("ft")})
		if err != nil || len(l.Items) != 1 || *l.Items[0].Id != *ft.Id {
			t.Errorf("displayName filter: %v %d", err, len(l.Items))
		}
	})

	t.Run("ClusterCreateValidation", func(t *testing.T) {
		cases := []struct {
			name, body, code string
			words            []string
		}{
			{"missing type", `{"compartmentId":"` + ten + `","unitCount":1,"unitShape":"SMALL_COHERE"}`, "MissingParameter", []string{"type"}},
			{"bad type", `{"type":"TRAINING","compartmentId":"` + ten + `","unitCount":1,"unitShape":"SMALL_COHERE"}`, "InvalidParameter", []string{"type", "FINE_TUNING"}},
			{"bad shape", `{"type":"FINE_TUNING","compartmentId":"` + ten + `","unitCount":1,"unitShape":"HUGE"}`, "InvalidParameter", []string{"unitShape"}},
			{"zero units", `{"type":"FINE_TUNING","compartmentId":"` + ten + `","unitCount":0,"unitShape":"SMALL_COHERE"}`, "InvalidParameter", []string{"unitCount"}},
			{"missing units", `{"type":"FINE_TUNING","compartmentId":"` + ten + `","unitShape":"SMALL_COHERE"}`, "MissingParameter", []string{"unitCount"}},
			{"unknown field", `{"type":"FINE_TUNING","compartmentId":"` + ten + `","unitCount":1,"unitShape":"SMALL_COHERE","color":"red"}`, "InvalidParameter", []string{"color"}},
			{"not json", `{"type":`, "CannotParseRequest", nil},
		}
		for _, tc := range cases {
			resp, body := s.Do(t, "POST", "/20231130/dedicatedAiClusters", []byte(tc.body), nil)
			var e struct{ Code, Message string }
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != 400 || e.Code != tc.code {
				t.Errorf("%s: got %d %s %s, want 400 %s", tc.name, resp.StatusCode, e.Code, e.Message, tc.code)
			}
			for _, w := range tc.words {
				if !strings.Contains(e.Message, w) {
					t.Errorf("%s: message %q does not mention %q", tc.name, e.Message, w)
				}
			}
			if resp.Header.Get("opc-request-id") == "" {
				t.Errorf("%s: no opc-request-id", tc.name)
			}
		}
		// Every SDK unit shape is accepted.
		for _, shape := range []string{"LARGE_COHERE", "META_H100_X8", "OAI_A10_X2"} {
			resp, body := s.Do(t, "POST", "/20231130/dedicatedAiClusters", []byte(`{"type":"HOSTING","compartmentId":"`+ten+`","unitCount":1,"unitShape":"`+shape+`","displayName":"shape-`+shape+`"}`), nil)
			if resp.StatusCode != 200 {
				t.Errorf("shape %s: %d %s", shape, resp.StatusCode, body)
			}
		}
	})

	t.Run("RetryToken", func(t *testing.T) {
		req := generativeai.CreateDedicatedAiClusterRequest{
			OpcRetryToken: common.String("token-1"),
			CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
				Type: generativeai.DedicatedAiClusterTypeHosting, CompartmentId: &ten, UnitCount: common.Int(1),
				UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere, DisplayName: common.String("retry"),
			},
		}
		a, err := c.CreateDedicatedAiCluster(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.CreateDedicatedAiCluster(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if *a.Id != *b.Id || *a.OpcWorkRequestId != *b.OpcWorkRequestId {
			t.Errorf("same token and body made two clusters: %s %s", *a.Id, *b.Id)
		}
		req.DisplayName = common.String("other")
		_, err = c.CreateDedicatedAiCluster(ctx, req)
		svcErr(t, err, 409, "Conflict", "opc-retry-token")
		l, err := c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten, DisplayName: common.String("retry")})
		if err != nil || len(l.Items) != 1 {
			t.Errorf("clusters named retry: %v %d", err, len(l.Items))
		}
		waitWR(t, c, *a.OpcWorkRequestId)
	})

	t.Run("ConcurrentRetryToken", func(t *testing.T) {
		req := generativeai.CreateDedicatedAiClusterRequest{
			OpcRetryToken: common.String("token-concurrent"),
			CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
				Type: generativeai.DedicatedAiClusterTypeHosting, CompartmentId: &ten, UnitCount: common.Int(1),
				UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere, DisplayName: common.String("concurrent"),
			},
		}
		const n = 6
		ids := make(chan string, n)
		errs := make(chan error, n)
		for range n {
			go func() {
				r, err := c.CreateDedicatedAiCluster(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				ids <- *r.Id
			}()
		}
		seen := map[string]bool{}
		for range n {
			select {
			case id := <-ids:
				seen[id] = true
			case err := <-errs:
				t.Errorf("concurrent retry: %v", err)
			}
		}
		if len(seen) != 1 {
			t.Errorf("%d concurrent requests with one retry token made %d clusters", n, len(seen))
		}
		l, err := c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten, DisplayName: common.String("concurrent")})
		if err != nil || len(l.Items) != 1 {
			t.Errorf("clusters named concurrent: %v %d", err, len(l.Items))
		}
	})

	var custom generativeai.Model
	t.Run("CreateModel", func(t *testing.T) {
		d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
		d.DisplayName = common.String("my-model")
		d.Description = common.String("first")
		r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d, OpcRequestId: common.String("MYREQUESTID")})
		if err != nil {
			t.Fatal(err)
		}
		if r.Etag == nil || r.OpcWorkRequestId == nil || r.OpcRequestId == nil || *r.OpcRequestId != "MYREQUESTID" {
			t.Fatalf("CreateModel headers: etag %v wr %v request id %v", r.Etag, r.OpcWorkRequestId, r.OpcRequestId)
		}
		if r.LifecycleState != generativeai.ModelLifecycleStateCreating || r.Type != generativeai.ModelTypeCustom || *r.BaseModelId != base {
			t.Errorf("new model: %s %s base %s", r.LifecycleState, r.Type, *r.BaseModelId)
		}
		if slices.Contains(r.Capabilities, "FINE_TUNE") || !slices.Contains(r.Capabilities, "CHAT") {
			t.Errorf("custom model capabilities %v", r.Capabilities)
		}
		lora, ok := r.FineTuneDetails.TrainingConfig.(generativeai.LoraTrainingConfig)
		if !ok {
			t.Fatalf("omitted trainingConfig came back as %T, want LoRA", r.FineTuneDetails.TrainingConfig)
		}
		if *lora.TotalTrainingEpochs != 3 || *lora.LearningRate != 0.0002 || *lora.TrainingBatchSize != 8 || *lora.EarlyStoppingPatience != 15 ||
			*lora.EarlyStoppingThreshold != 0.0001 || *lora.LogModelMetricsIntervalInSteps != 10 || *lora.LoraR != 8 || *lora.LoraAlpha != 8 || *lora.LoraDropout != 0.1 {
			t.Errorf("LoRA defaults: %+v", lora)
		}
		ds, ok := r.FineTuneDetails.TrainingDataset.(generativeai.ObjectStorageDataset)
		if !ok || *ds.ObjectName != "train.jsonl" || *ds.NamespaceName != s.Namespace {
			t.Errorf("dataset came back as %#v", r.FineTuneDetails.TrainingDataset)
		}
		wr := waitWR(t, c, *r.OpcWorkRequestId)
		if wr.Status != generativeai.OperationStatusFailed || wr.OperationType != generativeai.OperationTypeCreateModel {
			t.Errorf("fine-tune work request %s %s, want CREATE_MODEL FAILED", wr.OperationType, wr.Status)
		}
		g, err := c.GetModel(ctx, generativeai.GetModelRequest{ModelId: r.Id})
		if err != nil {
			t.Fatal(err)
		}
		if g.LifecycleState != generativeai.ModelLifecycleStateFailed || !strings.Contains(*g.LifecycleDetails, "not available") {
			t.Errorf("model without a trainer: %s %q; want FAILED saying training is not available", g.LifecycleState, deref(g.LifecycleDetails))
		}
		errs, err := c.ListWorkRequestErrors(ctx, generativeai.ListWorkRequestErrorsRequest{WorkRequestId: r.OpcWorkRequestId})
		if err != nil || len(errs.Items) == 0 {
			t.Errorf("ListWorkRequestErrors: %v, %d items", err, len(errs.Items))
		}
		logs, err := c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: r.OpcWorkRequestId})
		if err != nil || len(logs.Items) < 2 {
			t.Errorf("ListWorkRequestLogs: %v, %d items", err, len(logs.Items))
		}
		custom = g.Model
	})

	t.Run("MultipartDataset", func(t *testing.T) {
		// A dataset uploaded in parts by the SDK's UploadManager is a
		// valid training dataset.
		var b strings.Builder
		for i := 0; b.Len() < 2<<20+100; i++ {
			fmt.Fprintf(&b, "{\"prompt\": \"say %d\", \"completion\": \"%d\"}\n", i, i)
		}
		um := transfer.NewUploadManager()
		_, err := um.UploadStream(ctx, transfer.UploadStreamRequest{
			UploadRequest: transfer.UploadRequest{NamespaceName: &s.Namespace, BucketName: common.String("data"), ObjectName: common.String("big.jsonl"),
				PartSize: common.Int64(1 << 20), ObjectStorageClient: &s.ObjectStorage},
			StreamReader: strings.NewReader(b.String()),
		})
		if err != nil {
			t.Fatalf("UploadManager: %v", err)
		}
		d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "big.jsonl", nil)
		d.DisplayName = common.String("from-multipart")
		r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		if err != nil {
			t.Fatalf("CreateModel on a multipart dataset: %v", err)
		}
		waitWR(t, c, *r.OpcWorkRequestId)
	})

	t.Run("TrainingConfigs", func(t *testing.T) {
		for i, tc := range []generativeai.TrainingConfig{
			generativeai.TFewTrainingConfig{TotalTrainingEpochs: common.Int(5)},
			generativeai.VanillaTrainingConfig{},
			generativeai.VanillaTrainingConfig{NumOfLastLayers: common.Int(1), LearningRate: common.Float64(0.5)},
			generativeai.LoraTrainingConfig{LoraR: common.Int(64), LoraAlpha: common.Int(16), LoraDropout: common.Float64(0)},
		} {
			d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", tc)
			d.DisplayName = common.String("config-" + string(rune('a'+i)))
			r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
			if err != nil {
				t.Fatalf("%T: %v", tc, err)
			}
			switch got := r.FineTuneDetails.TrainingConfig.(type) {
			case generativeai.TFewTrainingConfig:
				if *got.TotalTrainingEpochs != 5 || *got.LearningRate != 0.01 {
					t.Errorf("T-Few: %+v", got)
				}
			case generativeai.VanillaTrainingConfig:
				want := 2 // the tiny model's layer count, below the default 15
				if i == 2 {
					want = 1
				}
				if *got.NumOfLastLayers != want || (i == 1 && *got.LearningRate != 0.01) {
					t.Errorf("Vanilla %d: layers %d lr %v", i, *got.NumOfLastLayers, *got.LearningRate)
				}
			case generativeai.LoraTrainingConfig:
				if *got.LoraR != 64 || *got.LoraAlpha != 16 || *got.LoraDropout != 0 {
					t.Errorf("LoRA: %+v", got)
				}
			default:
				t.Errorf("%T came back as %T", tc, got)
			}
			waitWR(t, c, *r.OpcWorkRequestId)
		}
	})

	t.Run("CreateModelValidation", func(t *testing.T) {
		other := s.NewTenancy(t)
		otherComp := s.NewCompartment(t, other.TenancyID, "theirs")
		cases := []struct {
			name   string
			mutate func(d *generativeai.CreateModelDetails)
			status int
			code   string
			words  []string
		}{
			{"epochs 0", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(0)}
			}, 400, "InvalidParameter", []string{"totalTrainingEpochs"}},
			{"epochs 101", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.TFewTrainingConfig{TotalTrainingEpochs: common.Int(101)}
			}, 400, "InvalidParameter", []string{"totalTrainingEpochs", "100"}},
			{"learning rate 0", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{LearningRate: common.Float64(0)}
			}, 400, "InvalidParameter", []string{"learningRate"}},
			{"learning rate 1.5", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.VanillaTrainingConfig{LearningRate: common.Float64(1.5)}
			}, 400, "InvalidParameter", []string{"learningRate"}},
			{"batch 0", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{TrainingBatchSize: common.Int(0)}
			}, 400, "InvalidParameter", []string{"trainingBatchSize"}},
			{"batch 1025", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{TrainingBatchSize: common.Int(1025)}
			}, 400, "InvalidParameter", []string{"trainingBatchSize", "1024"}},
			{"patience -1", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{EarlyStoppingPatience: common.Int(-1)}
			}, 400, "InvalidParameter", []string{"earlyStoppingPatience"}},
			{"threshold -1", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{EarlyStoppingThreshold: common.Float64(-1)}
			}, 400, "InvalidParameter", []string{"earlyStoppingThreshold"}},
			{"log interval -1", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{LogModelMetricsIntervalInSteps: common.Int(-1)}
			}, 400, "InvalidParameter", []string{"logModelMetricsIntervalInSteps"}},
			{"loraR 65", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{LoraR: common.Int(65)}
			}, 400, "InvalidParameter", []string{"loraR", "64"}},
			{"loraR 0", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{LoraR: common.Int(0)}
			}, 400, "InvalidParameter", []string{"loraR"}},
			{"loraAlpha 0", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{LoraAlpha: common.Int(0)}
			}, 400, "InvalidParameter", []string{"loraAlpha"}},
			{"loraDropout 1", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.LoraTrainingConfig{LoraDropout: common.Float64(1)}
			}, 400, "InvalidParameter", []string{"loraDropout"}},
			{"numOfLastLayers above layer count", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.VanillaTrainingConfig{NumOfLastLayers: common.Int(3)}
			}, 400, "InvalidParameter", []string{"numOfLastLayers", "2"}},
			{"numOfLastLayers 0", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingConfig = generativeai.VanillaTrainingConfig{NumOfLastLayers: common.Int(0)}
			}, 400, "InvalidParameter", []string{"numOfLastLayers"}},
			{"base model without FINE_TUNE", func(d *generativeai.CreateModelDetails) { d.BaseModelId = &chatOnly }, 400, "InvalidParameter", []string{"FINE_TUNE"}},
			{"unknown base model", func(d *generativeai.CreateModelDetails) {
				d.BaseModelId = common.String("ocid1.generativeaimodel.oc1..nothere")
			}, 404, "NotAuthorizedOrNotFound", []string{"baseModelId"}},
			{"HOSTING cluster", func(d *generativeai.CreateModelDetails) { d.FineTuneDetails.DedicatedAiClusterId = hosting.Id }, 400, "InvalidParameter", []string{"FINE_TUNING"}},
			{"unknown cluster", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.DedicatedAiClusterId = common.String("ocid1.generativeaidedicatedaicluster.oc1..nothere")
			}, 404, "NotAuthorizedOrNotFound", []string{"dedicatedAiClusterId"}},
			{"missing object", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingDataset = generativeai.ObjectStorageDataset{NamespaceName: &s.Namespace, BucketName: common.String("data"), ObjectName: common.String("nope.jsonl")}
			}, 400, "InvalidParameter", []string{"trainingDataset", "nope.jsonl"}},
			{"other tenancy's namespace", func(d *generativeai.CreateModelDetails) {
				d.FineTuneDetails.TrainingDataset = generativeai.ObjectStorageDataset{NamespaceName: &other.Namespace, BucketName: common.String("data"), ObjectName: common.String("train.jsonl")}
			}, 400, "InvalidParameter", []string{"trainingDataset"}},
			{"other tenancy's compartment", func(d *generativeai.CreateModelDetails) { d.CompartmentId = &otherComp }, 404, "NotAuthorizedOrNotFound", []string{"compartmentId"}},
			{"missing compartment", func(d *generativeai.CreateModelDetails) { d.CompartmentId = nil }, 400, "MissingParameter", []string{"compartmentId"}},
			{"missing base model", func(d *generativeai.CreateModelDetails) { d.BaseModelId = nil }, 400, "MissingParameter", []string{"baseModelId"}},
			{"missing fineTuneDetails", func(d *generativeai.CreateModelDetails) { d.FineTuneDetails = nil }, 400, "MissingParameter", []string{"fineTuneDetails"}},
		}
		for _, tc := range cases {
			d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
			d.DisplayName = common.String("invalid")
			tc.mutate(&d)
			_, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
			t.Run(tc.name, func(t *testing.T) { svcErr(t, err, tc.status, tc.code, tc.words...) })
		}
		// What the SDK will not send: bad discriminators, fields of another type.
		ds := `"trainingDataset":{"datasetType":"OBJECT_STORAGE","namespaceName":"` + s.Namespace + `","bucketName":"data","objectName":"train.jsonl"}`
		raw := []struct{ name, ftd, code, word string }{
			{"bad trainingConfigType", `{"dedicatedAiClusterId":"` + *ft.Id + `",` + ds + `,"trainingConfig":{"trainingConfigType":"QLORA_TRAINING_CONFIG"}}`, "InvalidParameter", "trainingConfigType"},
			{"missing trainingConfigType", `{"dedicatedAiClusterId":"` + *ft.Id + `",` + ds + `,"trainingConfig":{"totalTrainingEpochs":2}}`, "MissingParameter", "trainingConfigType"},
			{"LoRA field with T-Few", `{"dedicatedAiClusterId":"` + *ft.Id + `",` + ds + `,"trainingConfig":{"trainingConfigType":"TFEW_TRAINING_CONFIG","loraR":4}}`, "InvalidParameter", "loraR"},
			{"numOfLastLayers with LoRA", `{"dedicatedAiClusterId":"` + *ft.Id + `",` + ds + `,"trainingConfig":{"trainingConfigType":"LORA_TRAINING_CONFIG","numOfLastLayers":1}}`, "InvalidParameter", "numOfLastLayers"},
			{"bad datasetType", `{"dedicatedAiClusterId":"` + *ft.Id + `","trainingDataset":{"datasetType":"HTTP","namespaceName":"n","bucketName":"b","objectName":"o"}}`, "InvalidParameter", "datasetType"},
			{"missing objectName", `{"dedicatedAiClusterId":"` + *ft.Id + `","trainingDataset":{"datasetType":"OBJECT_STORAGE","namespaceName":"n","bucketName":"b"}}`, "MissingParameter", "objectName"},
			{"missing cluster", `{` + ds + `}`, "MissingParameter", "dedicatedAiClusterId"},
		}
		for _, tc := range raw {
			body := `{"compartmentId":"` + ten + `","baseModelId":"` + base + `","fineTuneDetails":` + tc.ftd + `}`
			resp, b := s.Do(t, "POST", "/20231130/models", []byte(body), nil)
			var e struct{ Code, Message string }
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != 400 || e.Code != tc.code || !strings.Contains(e.Message, tc.word) {
				t.Errorf("%s: got %d %s %q, want 400 %s naming %s", tc.name, resp.StatusCode, e.Code, e.Message, tc.code, tc.word)
			}
		}
		l, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, DisplayName: common.String("invalid")})
		if err != nil || len(l.Items) != 0 {
			t.Errorf("a rejected CreateModel stored a model: %v %d", err, len(l.Items))
		}
	})

	t.Run("CreateModelRetryToken", func(t *testing.T) {
		d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
		d.DisplayName = common.String("retried")
		req := generativeai.CreateModelRequest{CreateModelDetails: d, OpcRetryToken: common.String("model-token")}
		a, err := c.CreateModel(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.CreateModel(ctx, req)
		if err != nil {
			t.Fatalf("retry with the same token and body: %v", err)
		}
		if *a.Id != *b.Id || *a.OpcWorkRequestId != *b.OpcWorkRequestId {
			t.Errorf("a retried CreateModel made a second model: %s %s", *a.Id, *b.Id)
		}
		req.Description = common.String("changed")
		_, err = c.CreateModel(ctx, req)
		svcErr(t, err, 409, "Conflict", "opc-retry-token")
		waitWR(t, c, *a.OpcWorkRequestId)
	})

	t.Run("ModelVersions", func(t *testing.T) {
		d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
		d.DisplayName = common.String("my-model")
		_, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		svcErr(t, err, 409, "Conflict", "my-model")
		d.Version = common.String("2")
		r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		if err != nil {
			t.Fatalf("a new version of my-model: %v", err)
		}
		waitWR(t, c, *r.OpcWorkRequestId)
		_, err = c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: r.Id, UpdateModelDetails: generativeai.UpdateModelDetails{Version: common.String("1")}})
		svcErr(t, err, 409, "Conflict")
	})

	t.Run("UpdateModel", func(t *testing.T) {
		u, err := c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: custom.Id, IfMatch: custom_etag(t, c, *custom.Id),
			UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("second"), Vendor: common.String("me"), FreeformTags: map[string]string{"k": "v"}}})
		if err != nil {
			t.Fatal(err)
		}
		if *u.Description != "second" || *u.Vendor != "me" || u.FreeformTags["k"] != "v" || u.Etag == nil {
			t.Errorf("updated model: %+v", u.Model)
		}
		if h := u.RawResponse.Header.Get("opc-work-request-id"); h != "" {
			t.Errorf("UpdateModel answered opc-work-request-id %s", h)
		}
		_, err = c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: custom.Id, IfMatch: common.String(`"old"`),
			UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("third")}})
		svcErr(t, err, 412, "PreconditionFailed")
		if _, err := c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: custom.Id, IfMatch: common.String("*"),
			UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("second")}}); err != nil {
			t.Errorf("if-match *: %v", err)
		}
		resp, b := s.Do(t, "PUT", "/20231130/models/"+*custom.Id, []byte(`{"baseModelId":"x"}`), nil)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "baseModelId") {
			t.Errorf("UpdateModel of baseModelId: %d %s", resp.StatusCode, b)
		}
		_, err = c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: &base, UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("x")}})
		svcErr(t, err, 409, "IncorrectState", "BASE")
	})

	t.Run("ChangeCompartment", func(t *testing.T) {
		comp := s.NewCompartment(t, ten, "team")
		r, err := c.ChangeModelCompartment(ctx, generativeai.ChangeModelCompartmentRequest{ModelId: custom.Id,
			ChangeModelCompartmentDetails: generativeai.ChangeModelCompartmentDetails{CompartmentId: &comp}})
		if err != nil {
			t.Fatal(err)
		}
		if r.RawResponse.Header.Get("opc-work-request-id") != "" || r.OpcRequestId == nil {
			t.Errorf("ChangeModelCompartment headers: %v", r.RawResponse.Header)
		}
		l, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &comp, Id: custom.Id})
		if err != nil || len(l.Items) != 1 || *l.Items[0].CompartmentId != comp {
			t.Errorf("model in new compartment: %v %d", err, len(l.Items))
		}
		other := s.NewTenancy(t)
		otherComp := s.NewCompartment(t, other.TenancyID, "x")
		_, err = c.ChangeModelCompartment(ctx, generativeai.ChangeModelCompartmentRequest{ModelId: custom.Id,
			ChangeModelCompartmentDetails: generativeai.ChangeModelCompartmentDetails{CompartmentId: &otherComp}})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		_, err = c.ChangeModelCompartment(ctx, generativeai.ChangeModelCompartmentRequest{ModelId: custom.Id, IfMatch: common.String(`"old"`),
			ChangeModelCompartmentDetails: generativeai.ChangeModelCompartmentDetails{CompartmentId: &ten}})
		svcErr(t, err, 412, "PreconditionFailed")
		_, err = c.ChangeDedicatedAiClusterCompartment(ctx, generativeai.ChangeDedicatedAiClusterCompartmentRequest{DedicatedAiClusterId: hosting.Id,
			ChangeDedicatedAiClusterCompartmentDetails: generativeai.ChangeDedicatedAiClusterCompartmentDetails{CompartmentId: &comp}})
		if err != nil {
			t.Fatal(err)
		}
		g, err := c.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: hosting.Id})
		if err != nil || *g.CompartmentId != comp {
			t.Errorf("cluster compartment after move: %v", err)
		}
		_, err = c.ChangeDedicatedAiClusterCompartment(ctx, generativeai.ChangeDedicatedAiClusterCompartmentRequest{DedicatedAiClusterId: hosting.Id,
			IfMatch: common.String(`"old"`), ChangeDedicatedAiClusterCompartmentDetails: generativeai.ChangeDedicatedAiClusterCompartmentDetails{CompartmentId: &ten}})
		svcErr(t, err, 412, "PreconditionFailed")
		if _, err := c.ChangeDedicatedAiClusterCompartment(ctx, generativeai.ChangeDedicatedAiClusterCompartmentRequest{DedicatedAiClusterId: hosting.Id,
			IfMatch: g.Etag, ChangeDedicatedAiClusterCompartmentDetails: generativeai.ChangeDedicatedAiClusterCompartmentDetails{CompartmentId: &comp}}); err != nil {
			t.Errorf("ChangeDedicatedAiClusterCompartment with the current etag: %v", err)
		}
		_, err = c.ChangeModelCompartment(ctx, generativeai.ChangeModelCompartmentRequest{ModelId: custom.Id,
			ChangeModelCompartmentDetails: generativeai.ChangeModelCompartmentDetails{CompartmentId: &ten}})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		var all []string
		var page *string
		for i := 0; ; i++ {
			r, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Limit: common.Int(2), Page: page,
				SortBy: generativeai.ListModelsSortByDisplayname, SortOrder: generativeai.ListModelsSortOrderDesc})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Items) > 2 {
				t.Fatalf("limit 2 answered %d items", len(r.Items))
			}
			for _, m := range r.Items {
				all = append(all, *m.DisplayName)
			}
			if r.OpcNextPage == nil {
				break
			}
			page = r.OpcNextPage
			if i > 50 {
				t.Fatal("paging does not end")
			}
		}
		if !slices.IsSortedFunc(all, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("displayName DESC pages are not sorted: %v", all)
		}
		one, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Limit: common.Int(1000)})
		if err != nil || len(one.Items) != len(all) || one.OpcNextPage != nil {
			t.Errorf("paged %d models, one page has %d (%v)", len(all), len(one.Items), err)
		}
		resp, _ := s.Do(t, "GET", "/20231130/models?compartmentId="+ten+"&limit=0", nil, nil)
		if resp.StatusCode != 400 {
			t.Errorf("limit=0: %d", resp.StatusCode)
		}
		resp, _ = s.Do(t, "GET", "/20231130/models?compartmentId="+ten+"&sortBy=size", nil, nil)
		if resp.StatusCode != 400 {
			t.Errorf("sortBy=size: %d", resp.StatusCode)
		}
		resp, _ = s.Do(t, "GET", "/20231130/models", nil, nil)
		if resp.StatusCode != 400 {
			t.Errorf("ListModels without compartmentId: %d", resp.StatusCode)
		}
		_, err = c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Page: common.String("garbage")})
		svcErr(t, err, 400, "InvalidParameter", "page")
		resp, _ = s.Do(t, "GET", "/20231130/workRequests?compartmentId="+ten+"&sortBy=timeCreated", nil, nil)
		if resp.StatusCode != 400 {
			t.Errorf("work requests sortBy=timeCreated: %d", resp.StatusCode)
		}
		failed, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, LifecycleState: generativeai.ModelLifecycleStateFailed})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range failed.Items {
			if m.LifecycleState != generativeai.ModelLifecycleStateFailed {
				t.Errorf("lifecycleState=FAILED listed a %s model", m.LifecycleState)
			}
		}
		if len(failed.Items) == 0 {
			t.Errorf("no FAILED models listed")
		}
	})

	t.Run("WorkRequests", func(t *testing.T) {
		l, err := c.ListWorkRequests(ctx, generativeai.ListWorkRequestsRequest{CompartmentId: &ten, ResourceId: ft.Id})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 1 || l.Items[0].OperationType != generativeai.OperationTypeCreateDedicatedAiCluster || *l.Items[0].Resources[0].Identifier != *ft.Id {
			t.Errorf("work requests of the cluster: %+v", l.Items)
		}
		w := l.Items[0]
		if w.TimeAccepted == nil || w.TimeStarted == nil || w.TimeFinished == nil || *w.PercentComplete != 100 {
			t.Errorf("finished work request times/percent: %+v", w)
		}
		f, err := c.ListWorkRequests(ctx, generativeai.ListWorkRequestsRequest{CompartmentId: &ten, Status: generativeai.ListWorkRequestsStatusFailed})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range f.Items {
			if w.Status != generativeai.OperationStatusFailed {
				t.Errorf("status=FAILED listed %s", w.Status)
			}
		}
		_, err = c.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: common.String("ocid1.generativeaiworkrequest.oc1..none")})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		// Logs page like every list.
		var msgs []string
		var page *string
		for i := 0; ; i++ {
			lg, err := c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: w.Id, Limit: common.Int(1), Page: page})
			if err != nil {
				t.Fatal(err)
			}
			if len(lg.Items) > 1 {
				t.Fatalf("logs limit 1 answered %d", len(lg.Items))
			}
			for _, l := range lg.Items {
				msgs = append(msgs, *l.Message)
			}
			if lg.OpcNextPage == nil || i > 20 {
				break
			}
			page = lg.OpcNextPage
		}
		all, err := c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: w.Id})
		if err != nil || len(all.Items) != len(msgs) || len(msgs) < 2 {
			t.Errorf("paged %d log lines, one page has %d (%v)", len(msgs), len(all.Items), err)
		}
		// DESC reverses the whole list, not each page.
		var desc []string
		page = nil
		for i := 0; ; i++ {
			lg, err := c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: w.Id, Limit: common.Int(1), Page: page,
				SortOrder: generativeai.ListWorkRequestLogsSortOrderDesc})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lg.Items {
				desc = append(desc, *l.Message)
			}
			if lg.OpcNextPage == nil || i > 20 {
				break
			}
			page = lg.OpcNextPage
		}
		rev := slices.Clone(msgs)
		slices.Reverse(rev)
		if !slices.Equal(desc, rev) {
			t.Errorf("logs DESC by pages of 1: %q, want %q", desc, rev)
		}
		_, err = c.ListWorkRequestErrors(ctx, generativeai.ListWorkRequestErrorsRequest{WorkRequestId: w.Id, Limit: common.Int(1),
			SortOrder: generativeai.ListWorkRequestErrorsSortOrderDesc, SortBy: generativeai.ListWorkRequestErrorsSortByTimestamp})
		if err != nil {
			t.Errorf("errors DESC: %v", err)
		}
	})

	t.Run("SortKeys", func(t *testing.T) {
		// Every sortBy the SDK's enums allow, paged one item at a time.
		for _, order := range []generativeai.ListModelsSortOrderEnum{generativeai.ListModelsSortOrderAsc, generativeai.ListModelsSortOrderDesc} {
			for _, by := range generativeai.GetListModelsSortByEnumValues() {
				var keys []string
				var page *string
				for i := 0; i < 100; i++ {
					r, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Limit: common.Int(1), Page: page, SortBy: by, SortOrder: order})
					if err != nil {
						t.Fatalf("models by %s %s: %v", by, order, err)
					}
					for _, m := range r.Items {
						switch by {
						case generativeai.ListModelsSortByLifecyclestate:
							keys = append(keys, string(m.LifecycleState))
						case generativeai.ListModelsSortByDisplayname:
							keys = append(keys, *m.DisplayName)
						default:
							keys = append(keys, m.TimeCreated.UTC().Format(sortableTime))
						}
					}
					if page = r.OpcNextPage; page == nil {
						break
					}
				}
				if len(keys) < 3 || !sortedAs(keys, order == generativeai.ListModelsSortOrderDesc) {
					t.Errorf("models by %s %s: %q", by, order, keys)
				}
			}
		}
		for _, by := range generativeai.GetListDedicatedAiClustersSortByEnumValues() {
			var keys []string
			var page *string
			for i := 0; i < 100; i++ {
				r, err := c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten, Limit: common.Int(1), Page: page,
					SortBy: by, SortOrder: generativeai.ListDedicatedAiClustersSortOrderAsc})
				if err != nil {
					t.Fatalf("clusters by %s: %v", by, err)
				}
				for _, cl := range r.Items {
					switch by {
					case generativeai.ListDedicatedAiClustersSortByLifecyclestate:
						keys = append(keys, string(cl.LifecycleState))
					case generativeai.ListDedicatedAiClustersSortByDisplayname:
						keys = append(keys, *cl.DisplayName)
					default:
						keys = append(keys, cl.TimeCreated.UTC().Format(sortableTime))
					}
				}
				if page = r.OpcNextPage; page == nil {
					break
				}
			}
			if len(keys) < 2 || !sortedAs(keys, false) {
				t.Errorf("clusters by %s: %q", by, keys)
			}
		}
		for _, by := range generativeai.GetListWorkRequestsSortByEnumValues() {
			r, err := c.ListWorkRequests(ctx, generativeai.ListWorkRequestsRequest{CompartmentId: &ten, SortBy: by, SortOrder: generativeai.ListWorkRequestsSortOrderAsc})
			if err != nil {
				t.Fatalf("work requests by %s: %v", by, err)
			}
			keys := names(r.Items, func(w generativeai.WorkRequestSummary) string { return w.TimeAccepted.UTC().Format(sortableTime) })
			if len(keys) < 2 || !sortedAs(keys, false) {
				t.Errorf("work requests by %s: %q", by, keys)
			}
		}
		// Several capability filters are applied together in the store: a
		// page of 1 is never empty before the list ends.
		want := []generativeai.ModelCapabilityEnum{"CHAT", "FINE_TUNE"}
		var got int
		var page *string
		for i := 0; i < 100; i++ {
			r, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Capability: want, Limit: common.Int(1), Page: page})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Items) != 1 {
				t.Fatalf("capability=CHAT&capability=FINE_TUNE limit 1: page %d has %d items", i, len(r.Items))
			}
			if m := r.Items[0]; !slices.Contains(m.Capabilities, "CHAT") || !slices.Contains(m.Capabilities, "FINE_TUNE") {
				t.Errorf("capability filter listed %s with %v", *m.Id, m.Capabilities)
			}
			got++
			if page = r.OpcNextPage; page == nil {
				break
			}
		}
		if got == 0 {
			t.Errorf("no model has CHAT and FINE_TUNE")
		}
	})

	t.Run("TenancyIsolation", func(t *testing.T) {
		other := s.NewTenancy(t)
		oc := s.NewGenAIClient(t, other.Config)
		_, err := oc.GetModel(ctx, generativeai.GetModelRequest{ModelId: custom.Id})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		_, err = oc.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: ft.Id})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		_, err = oc.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		_, err = oc.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: custom.Id, UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("x")}})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		_, err = oc.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: ft.Id})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		_, err = oc.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: custom_wr(t, c, *custom.Id)})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
		// Base models are listed for every tenancy.
		l, err := oc.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &other.TenancyID})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 2 {
			t.Errorf("another tenancy sees %d models, want the 2 base models", len(l.Items))
		}
		// Their cluster cannot train our models, and ours not theirs.
		d := modelDetails(other.TenancyID, base, *ft.Id, other.Namespace, "data", "train.jsonl", nil)
		_, err = oc.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound", "dedicatedAiClusterId")
	})

	t.Run("NotAuthenticated", func(t *testing.T) {
		key := s.NewTenancy(t)
		// Same tenancy and user, wrong key: sign with another user's
		// key but keep the first tenancy's ids.
		bad := common.NewRawConfigurationProvider(ten, key.UserID, "us-ashburn-1", "aa:bb", mustKeyPEM(t, key), nil)
		bc := s.NewGenAIClient(t, bad)
		_, err := bc.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten})
		svcErr(t, err, 401, "NotAuthenticated")
		resp, _ := s.Do(t, "GET", "/20231130/models?compartmentId="+ten, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("signed raw request: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", s.BaseURL+"/20231130/models?compartmentId="+ten, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 401 || r.Header.Get("opc-request-id") == "" {
			t.Errorf("unsigned request: %d, request id %q", r.StatusCode, r.Header.Get("opc-request-id"))
		}
	})

	t.Run("DeleteModel", func(t *testing.T) {
		_, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: custom.Id, IfMatch: common.String(`"nope"`)})
		svcErr(t, err, 412, "PreconditionFailed")
		r, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: custom.Id})
		if err != nil {
			t.Fatal(err)
		}
		if r.OpcWorkRequestId == nil || r.RawResponse.StatusCode != 204 {
			t.Fatalf("DeleteModel: status %d wr %v", r.RawResponse.StatusCode, r.OpcWorkRequestId)
		}
		if wr := waitWR(t, c, *r.OpcWorkRequestId); wr.Status != generativeai.OperationStatusSucceeded || wr.OperationType != generativeai.OperationTypeDeleteModel {
			t.Errorf("delete work request %s %s", wr.OperationType, wr.Status)
		}
		g, err := c.GetModel(ctx, generativeai.GetModelRequest{ModelId: custom.Id})
		if err != nil || g.LifecycleState != generativeai.ModelLifecycleStateDeleted {
			t.Fatalf("deleted model: %v %s", err, g.LifecycleState)
		}
		l, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, Id: custom.Id})
		if err != nil || len(l.Items) != 0 {
			t.Errorf("ListModels shows a DELETED model: %v %d", err, len(l.Items))
		}
		l, err = c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, LifecycleState: generativeai.ModelLifecycleStateDeleted})
		if err != nil || len(l.Items) != 1 {
			t.Errorf("ListModels lifecycleState=DELETED: %v %d", err, len(l.Items))
		}
		_, err = c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: custom.Id})
		svcErr(t, err, 409, "IncorrectState")
		// The name and version of a deleted model are free again.
		again := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
		again.DisplayName, again.Version = custom.DisplayName, custom.Version
		ar, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: again})
		if err != nil {
			t.Errorf("CreateModel with a deleted model's name and version: %v", err)
		} else {
			waitWR(t, c, *ar.OpcWorkRequestId)
		}
		_, err = c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: &base})
		svcErr(t, err, 409, "IncorrectState")
		_, err = c.GetModel(ctx, generativeai.GetModelRequest{ModelId: common.String("ocid1.generativeaimodel.oc1..none")})
		svcErr(t, err, 404, "NotAuthorizedOrNotFound")
	})

	t.Run("DeleteCluster", func(t *testing.T) {
		_, err := c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: hosting.Id, IfMatch: common.String(`"old"`)})
		svcErr(t, err, 412, "PreconditionFailed")
		r, err := c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: hosting.Id,
			IfMatch: clusterETag(t, c, *hosting.Id)})
		if err != nil {
			t.Fatal(err)
		}
		if r.OpcWorkRequestId == nil {
			t.Fatal("DeleteDedicatedAiCluster has no opc-work-request-id")
		}
		waitWR(t, c, *r.OpcWorkRequestId)
		g, err := c.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: hosting.Id})
		if err != nil || g.LifecycleState != generativeai.DedicatedAiClusterLifecycleStateDeleted {
			t.Errorf("deleted cluster: %v %s", err, g.LifecycleState)
		}
		_, err = c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: hosting.Id})
		svcErr(t, err, 409, "IncorrectState")
		d := modelDetails(ten, base, *hosting.Id, s.Namespace, "data", "train.jsonl", nil)
		_, err = c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		if err == nil {
			t.Errorf("CreateModel on a deleted cluster succeeded")
		}
	})

	t.Run("UnknownPath", func(t *testing.T) {
		resp, b := s.Do(t, "GET", "/20231130/endpoints", nil, nil)
		if resp.StatusCode != 404 || !strings.Contains(string(b), "NotAuthorizedOrNotFound") {
			t.Errorf("unknown path: %d %s", resp.StatusCode, b)
		}
		resp, b = s.Do(t, "PATCH", "/20231130/models/"+base, []byte(`{}`), nil)
		if resp.StatusCode != 405 || !strings.Contains(string(b), `"MethodNotAllowed"`) || resp.Header.Get("Allow") == "" {
			t.Errorf("PATCH on a model: %d %s (Allow %q)", resp.StatusCode, b, resp.Header.Get("Allow"))
		}
	})
}

// sortableTime formats times so that they sort as strings.
const sortableTime = "2006-01-02T15:04:05.000000000"

// sortedAs reports whether keys are in ascending (or, with desc, descending) order.
func sortedAs(keys []string, desc bool) bool {
	if desc {
		return slices.IsSortedFunc(keys, func(a, b string) int { return strings.Compare(b, a) })
	}
	return slices.IsSorted(keys)
}

func names[T any](items []T, f func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = f(it)
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func custom_etag(t *testing.T, c generativeai.GenerativeAiClient, id string) *string {
	t.Helper()
	g, err := c.GetModel(context.Background(), generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		t.Fatal(err)
	}
	return g.Etag
}

func clusterETag(t *testing.T, c generativeai.GenerativeAiClient, id string) *string {
	t.Helper()
	g, err := c.GetDedicatedAiCluster(context.Background(), generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: &id})
	if err != nil {
		t.Fatal(err)
	}
	return g.Etag
}

func custom_wr(t *testing.T, c generativeai.GenerativeAiClient, id string) *string {
	t.Helper()
	g, err := c.GetModel(context.Background(), generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.ListWorkRequests(context.Background(), generativeai.ListWorkRequestsRequest{CompartmentId: g.CompartmentId, ResourceId: &id})
	if err != nil || len(l.Items) == 0 {
		t.Fatalf("work requests of %s: %v", id, err)
	}
	return l.Items[0].Id
}

func mustKeyPEM(t *testing.T, id servertest.Identity) string {
	t.Helper()
	// Any valid RSA key that is not the registered one: sign with a fresh key.
	k, err := newKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestThrottling checks 429 TooManyRequests with retry-after once a
// tenancy spends its request burst.
func TestThrottling(t *testing.T) {
	s := servertest.Start(t, servertest.Options{RateLimit: 0.5, RateBurst: 3})
	ctx := context.Background()
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		_, err = s.GenAI.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &s.TenancyID})
	}
	svcErr(t, err, 429, "TooManyRequests")
	resp, _ := s.Do(t, "GET", "/20231130/models?compartmentId="+s.TenancyID, nil, nil)
	if resp.StatusCode != 429 || resp.Header.Get("retry-after") == "" {
		t.Errorf("throttled request: %d, retry-after %q", resp.StatusCode, resp.Header.Get("retry-after"))
	}
	// Another tenancy has its own budget.
	other := s.NewTenancy(t)
	if _, err := s.NewGenAIClient(t, other.Config).ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &other.TenancyID}); err != nil {
		t.Errorf("another tenancy is throttled too: %v", err)
	}
}
