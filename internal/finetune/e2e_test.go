package finetune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/client"
	"github.com/gantryml/gantry/internal/finetune"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/peft"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// Base models the tests install into DATA/base-models before the server
// starts: both the tiny preset; the second without the CHAT capability.
const (
	chatBase = "tiny"
	textBase = "tiny-text"
)

// installBaseModels writes the test catalog into dataDir.
func installBaseModels(t *testing.T, dataDir string) {
	t.Helper()
	ctx := context.Background()
	for name, spec := range map[string]string{
		chatBase: `{"displayName": "tiny", "vendor": "test"}`,
		textBase: `{"displayName": "tiny-text", "vendor": "test", "capabilities": ["FINE_TUNE", "TEXT_GENERATION"]}`,
	} {
		dir := filepath.Join(dataDir, server.BaseModelsDir, name)
		opts := model.InitOptions{Preset: "tiny", Seed: 7}
		opts.TokenizerJSON, opts.TokenizerConfigJSON = tokenizer.ByteLevelFiles()
		tok, err := tokenizer.Parse(opts.TokenizerJSON, opts.TokenizerConfigJSON)
		if err != nil {
			t.Fatal(err)
		}
		opts.VocabSize = tok.VocabSize()
		if id, ok := tok.BOS(); ok {
			opts.BOS = &id
		}
		if id, ok := tok.EOS(); ok {
			opts.EOS = &id
		}
		if err := model.Init(ctx, dir, opts); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, server.CatalogFile), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dataset returns n prompt/completion lines (tiny arithmetic facts).
func dataset(n int) string {
	var b strings.Builder
	for i := range n {
		a, c := i%7+1, i%5+2
		fmt.Fprintf(&b, `{"prompt": "%d plus %d is", "completion": " %d"}`+"\n", a, c, a+c)
	}
	return b.String()
}

// startServer starts an in-process server with the finetune Trainer on a
// data directory holding the test catalog.
func startServer(t *testing.T, configure func(*finetune.Trainer)) (*servertest.Server, *finetune.Trainer) {
	t.Helper()
	return startServerOn(t, false, configure)
}

// startServerOn is startServer, on PostgreSQL when postgres is set.
func startServerOn(t *testing.T, postgres bool, configure func(*finetune.Trainer)) (*servertest.Server, *finetune.Trainer) {
	t.Helper()
	dataDir := t.TempDir()
	installBaseModels(t, dataDir)
	tr := finetune.New(dataDir)
	tr.Threads = 1
	if configure != nil {
		configure(tr)
	}
	s := servertest.Start(t, servertest.Options{DataDir: dataDir, Trainer: tr, Postgres: postgres})
	return s, tr
}

// upload creates bucket "data" (if needed) and uploads body as object
// with the SDK's UploadManager.
func upload(t *testing.T, c objectstorage.ObjectStorageClient, ns, tenancy, object, body string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &ns,
		CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("data"), CompartmentId: &tenancy}})
	if err != nil && !strings.Contains(err.Error(), "BucketAlreadyExists") {
		t.Fatalf("CreateBucket: %v", err)
	}
	um := transfer.NewUploadManager()
	if _, err := um.UploadStream(ctx, transfer.UploadStreamRequest{
		UploadRequest: transfer.UploadRequest{NamespaceName: &ns, BucketName: common.String("data"), ObjectName: &object,
			ObjectStorageClient: &c},
		StreamReader: strings.NewReader(body),
	}); err != nil {
		t.Fatalf("upload %s: %v", object, err)
	}
}

func createCluster(t *testing.T, c generativeai.GenerativeAiClient, tenancy string, units int) string {
	t.Helper()
	ctx := context.Background()
	r, err := c.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
		Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: &tenancy, UnitCount: common.Int(units),
		UnitShape: generativeai.DedicatedAiClusterUnitShapeLargeGeneric, DisplayName: common.String("ft")}})
	if err != nil {
		t.Fatalf("CreateDedicatedAiCluster: %v", err)
	}
	if wr := waitWR(t, c, *r.OpcWorkRequestId, 30*time.Second); wr.Status != generativeai.OperationStatusSucceeded {
		t.Fatalf("cluster work request %s", wr.Status)
	}
	return *r.Id
}

func createModel(t *testing.T, c generativeai.GenerativeAiClient, tenancy, base, cluster, ns, object, name string, tc generativeai.TrainingConfig) (modelID, wrID string) {
	t.Helper()
	r, err := c.CreateModel(context.Background(), generativeai.CreateModelRequest{CreateModelDetails: generativeai.CreateModelDetails{
		CompartmentId: &tenancy, BaseModelId: common.String(server.BaseModelID(base)), DisplayName: &name,
		FineTuneDetails: &generativeai.FineTuneDetails{
			TrainingDataset:      generativeai.ObjectStorageDataset{NamespaceName: &ns, BucketName: common.String("data"), ObjectName: &object},
			DedicatedAiClusterId: &cluster,
			TrainingConfig:       tc,
		}}})
	if err != nil {
		t.Fatalf("CreateModel %s: %v", name, err)
	}
	return *r.Id, *r.OpcWorkRequestId
}

func waitWR(t *testing.T, c generativeai.GenerativeAiClient, id string, timeout time.Duration) generativeai.WorkRequest {
	t.Helper()
	deadline := time.Now().Add(timeout)
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
			t.Fatalf("work request %s still %s (%v%%) after %v", id, r.Status, deref(r.PercentComplete), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getModel(t *testing.T, c generativeai.GenerativeAiClient, id string) generativeai.Model {
	t.Helper()
	r, err := c.GetModel(context.Background(), generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		t.Fatalf("GetModel: %v", err)
	}
	return r.Model
}

func wrLogs(t *testing.T, c generativeai.GenerativeAiClient, id string) []string {
	t.Helper()
	var out []string
	req := generativeai.ListWorkRequestLogsRequest{WorkRequestId: &id, Limit: common.Int(100)}
	for {
		r, err := c.ListWorkRequestLogs(context.Background(), req)
		if err != nil {
			t.Fatalf("ListWorkRequestLogs: %v", err)
		}
		for _, l := range r.Items {
			out = append(out, deref(l.Message))
		}
		if r.OpcNextPage == nil {
			return out
		}
		req.Page = r.OpcNextPage
	}
}

func wrErrors(t *testing.T, c generativeai.GenerativeAiClient, id string) []string {
	t.Helper()
	r, err := c.ListWorkRequestErrors(context.Background(), generativeai.ListWorkRequestErrorsRequest{WorkRequestId: &id, Limit: common.Int(100)})
	if err != nil {
		t.Fatalf("ListWorkRequestErrors: %v", err)
	}
	var out []string
	for _, e := range r.Items {
		out = append(out, deref(e.Code)+": "+deref(e.Message))
	}
	return out
}

// metricPoints parses the metric lines of a work request's logs the way
// `gantry model metrics` does.
func metricPoints(logs []string) []client.MetricPoint {
	var pts []client.MetricPoint
	for _, l := range logs {
		if p, ok := client.ParseMetricLine(l); ok {
			pts = append(pts, p)
		}
	}
	return pts
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func newClient(t *testing.T, dataDir, url string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{ConfigFile: auth.ConfigPath(dataDir), Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	c.Out, c.Err = &bytes.Buffer{}, &bytes.Buffer{}
	return c
}

// checkSeries checks a metric series: steps increasing without
// duplicates up to the last, validation on the last point, and the
// model's final loss among the validation losses.
func checkSeries(t *testing.T, pts []client.MetricPoint, totalSteps int, finalLoss float64) {
	t.Helper()
	if len(pts) == 0 {
		t.Fatal("no metric lines in the work request logs")
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Step <= pts[i-1].Step {
			t.Errorf("metric steps not increasing: %d after %d", pts[i].Step, pts[i-1].Step)
		}
	}
	last := pts[len(pts)-1]
	if last.Step != totalSteps || last.ValLoss == nil || last.ValAccuracy == nil {
		t.Errorf("last metric point %+v: want step %d with validation", last, totalSteps)
	}
	found := false
	for _, p := range pts {
		if p.ValLoss != nil && *p.ValLoss == finalLoss {
			found = true
		}
		if !(p.TrainLoss > 0) || !(p.LearningRate > 0) {
			t.Errorf("metric point %+v: loss and learning rate must be positive", p)
		}
	}
	if !found {
		t.Errorf("final loss %v is none of the logged validation losses", finalLoss)
	}
}

// TestEndToEnd trains a model under each method through the SDK, reads
// its metrics and logs, downloads its adapter and generates with it.
func TestEndToEnd(t *testing.T) {
	s, _ := startServer(t, nil)
	ctx := context.Background()
	c := s.GenAI
	upload(t, s.ObjectStorage, s.Namespace, s.TenancyID, "train.jsonl", dataset(30))
	cluster := createCluster(t, c, s.TenancyID, 3)

	// 30 examples: 24 train, 6 validation; batch 4: 6 steps an epoch.
	cases := []struct {
		name, base string
		tc         generativeai.TrainingConfig
		epochs     int
		metrics    generativeai.ModelMetricsModelMetricsTypeEnum
		kind       peft.Kind
	}{
		{"lora", chatBase, generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(2), TrainingBatchSize: common.Int(4),
			LearningRate: common.Float64(0.01), LogModelMetricsIntervalInSteps: common.Int(2), LoraR: common.Int(4), LoraAlpha: common.Int(8)},
			2, generativeai.ModelMetricsModelMetricsTypeChatModelMetrics, peft.LoRA},
		{"tfew", textBase, generativeai.TFewTrainingConfig{TotalTrainingEpochs: common.Int(2), TrainingBatchSize: common.Int(4),
			LogModelMetricsIntervalInSteps: common.Int(3)},
			2, generativeai.ModelMetricsModelMetricsTypeTextGenerationModelMetrics, peft.IA3},
		{"vanilla", chatBase, generativeai.VanillaTrainingConfig{TotalTrainingEpochs: common.Int(1), TrainingBatchSize: common.Int(4),
			LearningRate: common.Float64(0.001), NumOfLastLayers: common.Int(1)},
			1, generativeai.ModelMetricsModelMetricsTypeChatModelMetrics, peft.Vanilla},
	}
	ids := make([]string, len(cases))
	wrs := make([]string, len(cases))
	for i, tc := range cases {
		ids[i], wrs[i] = createModel(t, c, s.TenancyID, tc.base, cluster, s.Namespace, "train.jsonl", "m-"+tc.name, tc.tc)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wr := waitWR(t, c, wrs[i], 3*time.Minute)
			m := getModel(t, c, ids[i])
			if wr.Status != generativeai.OperationStatusSucceeded || m.LifecycleState != generativeai.ModelLifecycleStateActive {
				t.Fatalf("work request %s, model %s (%s); errors %q", wr.Status, m.LifecycleState, deref(m.LifecycleDetails), wrErrors(t, c, wrs[i]))
			}
			if deref(wr.PercentComplete) != 100 {
				t.Errorf("percentComplete %v, want 100", deref(wr.PercentComplete))
			}
			mm := m.ModelMetrics
			if mm == nil {
				t.Fatal("ACTIVE model without modelMetrics")
			}
			var typ generativeai.ModelMetricsModelMetricsTypeEnum
			var acc, loss float64
			switch v := mm.(type) {
			case generativeai.ChatModelMetrics:
				typ, acc, loss = generativeai.ModelMetricsModelMetricsTypeChatModelMetrics, deref(v.FinalAccuracy), deref(v.FinalLoss)
			case generativeai.TextGenerationModelMetrics:
				typ, acc, loss = generativeai.ModelMetricsModelMetricsTypeTextGenerationModelMetrics, deref(v.FinalAccuracy), deref(v.FinalLoss)
			default:
				t.Fatalf("modelMetrics %T", mm)
			}
			if typ != tc.metrics {
				t.Errorf("modelMetricsType %s, want %s", typ, tc.metrics)
			}
			if !(loss > 0) || acc < 0 || acc > 1 {
				t.Errorf("final loss %v accuracy %v", loss, acc)
			}
			if !strings.Contains(deref(m.LifecycleDetails), "final validation loss") {
				t.Errorf("lifecycleDetails %q", deref(m.LifecycleDetails))
			}
			logs := wrLogs(t, c, wrs[i])
			pts := metricPoints(logs)
			checkSeries(t, pts, 6*tc.epochs, loss)

			cl := newClient(t, s.DataDir, s.BaseURL)
			cpts, err := cl.ModelMetrics(ctx, ids[i])
			if err != nil || len(cpts) != len(pts) {
				t.Errorf("gantry model metrics: %d points, %v; want %d", len(cpts), err, len(pts))
			}
			if err := cl.PrintModelMetrics(ctx, ids[i], false, filepath.Join(t.TempDir(), "loss.png")); err != nil {
				t.Errorf("gantry model metrics --plot: %v", err)
			}
			dir := t.TempDir()
			if _, err := cl.DownloadModel(ctx, ids[i], dir); err != nil {
				t.Fatalf("gantry model download: %v", err)
			}
			a, err := peft.Load(dir)
			if err != nil {
				t.Fatalf("load downloaded adapter: %v", err)
			}
			if a.Kind != tc.kind {
				t.Errorf("adapter kind %s, want %s", a.Kind, tc.kind)
			}
			base, err := model.Load(filepath.Join(s.DataDir, server.BaseModelsDir, tc.base))
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			tok, err := tokenizer.Load(base.Dir)
			if err != nil {
				t.Fatal(err)
			}
			// Greedy, without stopping at EOS, so both generate 6 tokens.
			prompt := tok.Encode("3 plus 4 is", true)
			gen := model.GenerateOptions{MaxTokens: 6, EOS: []int{}}
			before, err := base.Generate(ctx, prompt, gen)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Merge(&base.Config, &base.Weights); err != nil {
				t.Fatalf("merge adapter: %v", err)
			}
			after, err := base.Generate(ctx, prompt, gen)
			if err != nil {
				t.Fatalf("generate with the adapter: %v", err)
			}
			if len(after) != 6 {
				t.Errorf("generated %d tokens, want 6", len(after))
			}
			if tc.kind != peft.IA3 && slices.Equal(before, after) {
				// (IA3's few steps at its default rate may not change a greedy pick.)
				t.Errorf("the trained %s adapter does not change the generation %v", tc.kind, after)
			}
			t.Logf("%s: loss %.4f acc %.3f; before %q after %q", tc.name, loss, acc, tok.Decode(before, true), tok.Decode(after, true))
			checkNoWorkDir(t, s.DataDir, ids[i])
		})
	}
}

// TestBadDataset fails a model whose dataset has bad lines, each listed
// in the work request errors with its line number.
func TestBadDataset(t *testing.T) {
	s, _ := startServer(t, nil)
	c := s.GenAI
	lines := strings.Split(strings.TrimSuffix(dataset(14), "\n"), "\n")
	lines[2] = `{"prompt": "no completion"}`
	lines[6] = `not json`
	lines[9] = `{"prompt": 3, "completion": "x"}`
	upload(t, s.ObjectStorage, s.Namespace, s.TenancyID, "bad.jsonl", strings.Join(lines, "\n")+"\n")
	cluster := createCluster(t, c, s.TenancyID, 1)
	id, wrID := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "bad.jsonl", "bad", nil)
	wr := waitWR(t, c, wrID, time.Minute)
	m := getModel(t, c, id)
	if wr.Status != generativeai.OperationStatusFailed || m.LifecycleState != generativeai.ModelLifecycleStateFailed {
		t.Fatalf("work request %s, model %s; want FAILED", wr.Status, m.LifecycleState)
	}
	errs := wrErrors(t, c, wrID)
	for _, line := range []int{3, 7, 10} {
		want := fmt.Sprintf("bad.jsonl line %d: ", line)
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("work request errors lack %q: %q", want, errs)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(errs), func(e string) bool { return !strings.HasPrefix(e, finetune.CodeInvalidDataset+": ") })); n != 3 {
		t.Errorf("%d InvalidDataset errors, want 3: %q", n, errs)
	}
	d := deref(m.LifecycleDetails)
	if !strings.Contains(d, "3 bad line(s)") || !strings.Contains(d, "line 3, 7, 10") {
		t.Errorf("lifecycleDetails %q does not sum up the bad lines", d)
	}
	checkNoWorkDir(t, s.DataDir, id)
}

// TestTooBigForMemory fails a job at once when the estimate exceeds the
// memory available, saying how much it needs.
func TestTooBigForMemory(t *testing.T) {
	s, _ := startServer(t, func(tr *finetune.Trainer) {
		tr.MemAvailable = func() (int64, error) { return 1 << 20, nil }
	})
	c := s.GenAI
	upload(t, s.ObjectStorage, s.Namespace, s.TenancyID, "train.jsonl", dataset(20))
	cluster := createCluster(t, c, s.TenancyID, 1)
	id, wrID := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "train.jsonl", "big", nil)
	wr := waitWR(t, c, wrID, time.Minute)
	m := getModel(t, c, id)
	d := deref(m.LifecycleDetails)
	if wr.Status != generativeai.OperationStatusFailed || !strings.Contains(d, "needs about") || !strings.Contains(d, "1.0 MiB is available") {
		t.Fatalf("work request %s, model %s %q; want FAILED saying how much memory it needs", wr.Status, m.LifecycleState, d)
	}
	if slices.ContainsFunc(wrLogs(t, c, wrID), func(l string) bool { return strings.HasPrefix(l, "metrics: ") }) {
		t.Error("a job too big for memory trained")
	}
}

// TestCancelByDelete deletes a model while it trains: training stops and
// the model is DELETED with its work request CANCELED within 5 s, with no
// artifacts or working files left.
func TestCancelByDelete(t *testing.T) {
	s, _ := startServer(t, nil)
	ctx := context.Background()
	c := s.GenAI
	upload(t, s.ObjectStorage, s.Namespace, s.TenancyID, "train.jsonl", dataset(20))
	cluster := createCluster(t, c, s.TenancyID, 1)
	id, wrID := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "train.jsonl", "doomed",
		generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(100), TrainingBatchSize: common.Int(1)})
	// Wait until training is under way and has checkpointed.
	deadline := time.Now().Add(time.Minute)
	for {
		m := getModel(t, c, id)
		_, err := os.Stat(filepath.Join(workDir(s.DataDir, id), "checkpoints", "LATEST"))
		if strings.HasPrefix(deref(m.LifecycleDetails), "epoch ") && err == nil {
			break
		}
		if m.LifecycleState != generativeai.ModelLifecycleStateCreating || time.Now().After(deadline) {
			t.Fatalf("model %s %q: never got to training", m.LifecycleState, deref(m.LifecycleDetails))
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	dr, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: &id})
	if err != nil {
		t.Fatalf("DeleteModel: %v", err)
	}
	if wr := waitWR(t, c, *dr.OpcWorkRequestId, 10*time.Second); wr.Status != generativeai.OperationStatusSucceeded {
		t.Errorf("delete work request %s", wr.Status)
	}
	elapsed := time.Since(start)
	m := getModel(t, c, id)
	cwr := waitWR(t, c, wrID, 5*time.Second)
	if m.LifecycleState != generativeai.ModelLifecycleStateDeleted || cwr.Status != generativeai.OperationStatusCanceled {
		t.Errorf("after DeleteModel: model %s, create work request %s; want DELETED, CANCELED", m.LifecycleState, cwr.Status)
	}
	if elapsed > 5*time.Second {
		t.Errorf("DeleteModel took %v to end the model, want at most 5 s", elapsed)
	}
	t.Logf("deleted a training model in %v", elapsed)
	checkNoWorkDir(t, s.DataDir, id)
	lr, err := s.ObjectStorage.ListObjects(ctx, objectstorage.ListObjectsRequest{NamespaceName: &s.Namespace,
		BucketName: common.String(server.ArtifactsBucket), Prefix: common.String(id + "/")})
	if err == nil && len(lr.Objects) > 0 {
		t.Errorf("artifacts left after cancellation: %d objects", len(lr.Objects))
	}
}

// adapterBytes returns the downloaded artifacts of a model by file name.
func adapterBytes(t *testing.T, cl *client.Client, id string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	files, err := cl.DownloadModel(context.Background(), id, dir)
	if err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// workDir is a job's working directory: the server's DATA/jobs/<id>, or
// the trainer's fallback DATA/work/<id>.
func workDir(dataDir, id string) string {
	d := filepath.Join(dataDir, "jobs", id)
	if _, err := os.Stat(d); err == nil {
		return d
	}
	return filepath.Join(dataDir, "work", id)
}

// checkNoWorkDir checks that a finished job left no working files.
func checkNoWorkDir(t *testing.T, dataDir, id string) {
	t.Helper()
	for _, d := range []string{filepath.Join(dataDir, "jobs", id), filepath.Join(dataDir, "work", id)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("working directory %s left after the job (%v)", d, err)
		}
	}
}

func metricsJSON(t *testing.T, pts []client.MetricPoint) string {
	t.Helper()
	b, err := json.Marshal(pts)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestClusterQueue runs one job at a time on a one-unit cluster: the
// second and third models wait ACCEPTED at 0% while the first trains,
// each saying where it stands in the queue, and train once the first is
// gone. On SQLite and PostgreSQL.
func TestClusterQueue(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) { testClusterQueue(t, pg) })
	}
}

func testClusterQueue(t *testing.T, postgres bool) {
	s, _ := startServerOn(t, postgres, nil)
	ctx := context.Background()
	c := s.GenAI
	upload(t, s.ObjectStorage, s.Namespace, s.TenancyID, "train.jsonl", dataset(20))
	cluster := createCluster(t, c, s.TenancyID, 1)
	long, longWR := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "train.jsonl", "long",
		generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(100), TrainingBatchSize: common.Int(1)})
	short, shortWR := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "train.jsonl", "short",
		generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(1), TrainingBatchSize: common.Int(4)})
	third, thirdWR := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "train.jsonl", "third",
		generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(1), TrainingBatchSize: common.Int(4)})
	deadline := time.Now().Add(time.Minute)
	for !strings.HasPrefix(deref(getModel(t, c, long).LifecycleDetails), "epoch ") {
		if time.Now().After(deadline) {
			t.Fatal("the first model never started training")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond) // more than the runner's poll interval
	r, err := c.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &shortWR})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != generativeai.OperationStatusAccepted || deref(r.PercentComplete) != 0 {
		t.Errorf("second job on a one-unit cluster is %s at %v%% while the first trains, want ACCEPTED at 0%%", r.Status, deref(r.PercentComplete))
	}
	// Each queued job says where it stands in the cluster's queue.
	waiting := func(n int) string { return fmt.Sprintf("waiting for a free unit on cluster %s (%d ahead)", cluster, n) }
	waitLog(t, c, shortWR, waiting(0))
	waitLog(t, c, thirdWR, waiting(1))
	if _, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: &long}); err != nil {
		t.Fatal(err)
	}
	if wr := waitWR(t, c, longWR, 10*time.Second); wr.Status != generativeai.OperationStatusCanceled {
		t.Errorf("first job %s after DeleteModel, want CANCELED", wr.Status)
	}
	if wr := waitWR(t, c, shortWR, time.Minute); wr.Status != generativeai.OperationStatusSucceeded {
		t.Errorf("second job %s, want SUCCEEDED", wr.Status)
	}
	if m := getModel(t, c, short); m.LifecycleState != generativeai.ModelLifecycleStateActive {
		t.Errorf("second model %s", m.LifecycleState)
	}
	if wr := waitWR(t, c, thirdWR, time.Minute); wr.Status != generativeai.OperationStatusSucceeded {
		t.Errorf("third job %s, want SUCCEEDED", wr.Status)
	}
	if m := getModel(t, c, third); m.LifecycleState != generativeai.ModelLifecycleStateActive {
		t.Errorf("third model %s", m.LifecycleState)
	}
	// The third job moved up once the first was gone (unless the second
	// finished within one report period), and no line came twice in a
	// row.
	logs := wrLogs(t, c, thirdWR)
	if !slices.Contains(logs, waiting(1)) {
		t.Errorf("third job's logs %q lack %q", logs, waiting(1))
	}
	for i := 1; i < len(logs); i++ {
		if strings.HasPrefix(logs[i], "waiting for") && logs[i] == logs[i-1] {
			t.Errorf("waiting line repeated: %q", logs[i])
		}
	}
	if n := strings.Count(strings.Join(wrLogs(t, c, shortWR), "\n"), "waiting for a free unit"); n != 1 {
		t.Errorf("second job logged %d waiting lines, want 1", n)
	}
}

// waitLog waits up to 10 s for message among a work request's logs.
func waitLog(t *testing.T, c generativeai.GenerativeAiClient, wrID, message string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(wrLogs(t, c, wrID), message) {
		if time.Now().After(deadline) {
			t.Fatalf("work request logs %q lack %q", wrLogs(t, c, wrID), message)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTooFewExamples fails a model whose dataset is valid but too small.
func TestTooFewExamples(t *testing.T) {
	s, _ := startServer(t, nil)
	c := s.GenAI
	upload(t, s.ObjectStorage, s.Namespace, s.TenancyID, "small.jsonl", dataset(4))
	cluster := createCluster(t, c, s.TenancyID, 1)
	id, wrID := createModel(t, c, s.TenancyID, chatBase, cluster, s.Namespace, "small.jsonl", "small", nil)
	wr := waitWR(t, c, wrID, time.Minute)
	d := deref(getModel(t, c, id).LifecycleDetails)
	if wr.Status != generativeai.OperationStatusFailed || !strings.Contains(d, "4 valid example(s), at least 10 needed") || strings.Contains(d, "bad line") {
		t.Errorf("work request %s, lifecycleDetails %q", wr.Status, d)
	}
	if errs := wrErrors(t, c, wrID); !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "small.jsonl: 4 valid example(s)") }) {
		t.Errorf("work request errors %q", errs)
	}
}
