package finetune_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/oracle/oci-go-sdk/v65/objectstorage/transfer"

	"github.com/gantryml/gantry/internal/finetune"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// buildGantry builds cmd/gantry into a temporary directory.
func buildGantry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gantry")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/gantryml/gantry/cmd/gantry").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// installBaseModel writes one catalog entry, the tiny preset's config
// with the given fields replaced, into dataDir.
func installBaseModel(t *testing.T, dataDir, name string, override map[string]any) {
	t.Helper()
	cfg, err := model.PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range override {
		cfg[k] = v
	}
	dir := filepath.Join(dataDir, server.BaseModelsDir, name)
	opts := model.InitOptions{Config: cfg, Seed: 7}
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
	if err := model.Init(context.Background(), dir, opts); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`{"displayName": %q, "vendor": "test"}`, name)
	if err := os.WriteFile(filepath.Join(dir, server.CatalogFile), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// largeDataset returns n prompt/completion lines of about lineBytes
// bytes each: long counting completions (cut to the model's sequence
// length when tokenized).
func largeDataset(n, lineBytes int) []byte {
	var b bytes.Buffer
	var c strings.Builder
	for i := range n {
		c.Reset()
		for k := i; c.Len() < lineBytes; k++ {
			fmt.Fprintf(&c, " %d", k%97)
		}
		fmt.Fprintf(&b, `{"prompt": "count from %d:", "completion": %q}`+"\n", i, c.String())
	}
	return b.Bytes()
}

// uploadMultipart uploads body in 8 MiB parts with the SDK's
// UploadManager (bucket "data" is created when missing).
func uploadMultipart(t *testing.T, c objectstorage.ObjectStorageClient, ns, tenancy, object string, body []byte) {
	t.Helper()
	ctx := context.Background()
	_, err := c.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &ns,
		CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("data"), CompartmentId: &tenancy}})
	if err != nil && !strings.Contains(err.Error(), "BucketAlreadyExists") {
		t.Fatalf("CreateBucket: %v", err)
	}
	um := transfer.NewUploadManager()
	res, err := um.UploadStream(ctx, transfer.UploadStreamRequest{
		UploadRequest: transfer.UploadRequest{NamespaceName: &ns, BucketName: common.String("data"), ObjectName: &object,
			ObjectStorageClient: &c, PartSize: common.Int64(8 << 20), AllowMultipartUploads: common.Bool(true)},
		StreamReader: bytes.NewReader(body),
	})
	if err != nil {
		t.Fatalf("upload %s: %v", object, err)
	}
	if res.Type != transfer.MultipartUpload {
		t.Fatalf("upload %s was a %v, want a multipart upload", object, res.Type)
	}
}

// stopGantry ends a child server gracefully (its jobs, if any, go back
// to the queue).
func stopGantry(t *testing.T, g *gantryServe) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = g.cmd.Wait()
}

// killGantry SIGKILLs a child server.
func killGantry(t *testing.T, g *gantryServe) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = g.cmd.Wait()
}

// waitFor polls cond every 10 ms until it holds, failing after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// largestFile returns the path and size of the largest regular file
// matching pattern ("" and 0 when none does).
func largestFile(pattern string) (string, int64) {
	paths, _ := filepath.Glob(pattern)
	best, size := "", int64(0)
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Size() >= size {
			best, size = p, st.Size()
		}
	}
	return best, size
}

// checkSameRun checks that model id ended ACTIVE with the metrics, the
// metric series and the artifact bytes of the uninterrupted model ref,
// that its metric log lines appear once each, and that its working
// directory is gone.
func checkSameRun(t *testing.T, g *gantryServe, c generativeai.GenerativeAiClient, dataDir, refID, refWR, id, wrID string, attempts int) {
	t.Helper()
	wr := waitWR(t, c, wrID, 3*time.Minute)
	m := getModel(t, c, id)
	if wr.Status != generativeai.OperationStatusSucceeded || m.LifecycleState != generativeai.ModelLifecycleStateActive {
		b, _ := os.ReadFile(g.logs)
		t.Fatalf("after restart: work request %s, model %s (%s); errors %q\n%s", wr.Status, m.LifecycleState,
			deref(m.LifecycleDetails), wrErrors(t, c, wrID), b)
	}
	ref := getModel(t, c, refID)
	refMetrics, _ := ref.ModelMetrics.(generativeai.ChatModelMetrics)
	gotMetrics, _ := m.ModelMetrics.(generativeai.ChatModelMetrics)
	if refMetrics.FinalLoss == nil || gotMetrics.FinalLoss == nil ||
		*gotMetrics.FinalLoss != *refMetrics.FinalLoss || deref(gotMetrics.FinalAccuracy) != deref(refMetrics.FinalAccuracy) {
		t.Errorf("metrics after restart %+v, uninterrupted %+v", gotMetrics, refMetrics)
	}
	logs := wrLogs(t, c, wrID)
	seen := map[string]bool{}
	for _, l := range logs {
		if strings.HasPrefix(l, "metrics: ") {
			if seen[l] {
				t.Errorf("metric line logged twice: %q", l)
			}
			seen[l] = true
		}
	}
	refPts, gotPts := metricPoints(wrLogs(t, c, refWR)), metricPoints(logs)
	if len(gotPts) == 0 {
		t.Error("no metric lines after restart")
	}
	if a, b := metricsJSON(t, refPts), metricsJSON(t, gotPts); a != b {
		t.Errorf("metric series after restart differs from the uninterrupted run's:\n%s\n%s", b, a)
	}
	if n := strings.Count(strings.Join(logs, "\n"), "fine-tuning started"); n != attempts {
		t.Errorf("work request logs show %d attempts, want %d", n, attempts)
	}
	cl := newClient(t, dataDir, g.url)
	refFiles, gotFiles := adapterBytes(t, cl, refID), adapterBytes(t, cl, id)
	if len(gotFiles) == 0 || len(gotFiles) != len(refFiles) {
		t.Errorf("artifacts after restart: %d files, uninterrupted %d", len(gotFiles), len(refFiles))
	}
	for name, b := range refFiles {
		if sha256.Sum256(gotFiles[name]) != sha256.Sum256(b) {
			t.Errorf("artifact %s (%d bytes) differs from the uninterrupted run's (%d bytes)", name, len(gotFiles[name]), len(b))
		}
	}
	checkNoWorkDir(t, dataDir, id)
	lr, err := c.ListModels(context.Background(), generativeai.ListModelsRequest{CompartmentId: m.CompartmentId, DisplayName: m.DisplayName})
	if err != nil || len(lr.Items) != 1 {
		t.Errorf("ListModels %s: %v, %d models; want 1", deref(m.DisplayName), err, len(lr.Items))
	}
}

// TestLargeDatasetKilledDuringDownload uploads a 25 MB dataset in parts,
// trains a model on it uninterrupted, then trains a second one and
// SIGKILLs the server halfway through copying the dataset into the
// job's working directory; the restarted server removes the partial copy
// and downloads again, and is killed once more after the first
// checkpoint. The server restarted again resumes from that checkpoint
// and ends the model ACTIVE exactly as the uninterrupted run: same
// metrics, series and adapter bytes, no metric line twice, no working
// files left.
func TestLargeDatasetKilledDuringDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gantry and trains twice on a 25 MB dataset")
	}
	bin := buildGantry(t)
	dataDir := t.TempDir()
	// max_position_embeddings 128: the long lines are cut to 128
	// tokens, so that training stays short.
	installBaseModel(t, dataDir, "tiny-128", map[string]any{"max_position_embeddings": 128})
	ctx := context.Background()

	g := startGantry(t, bin, dataDir)
	c, objs, ten := g.clients(t, dataDir)
	ns, err := objs.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		t.Fatalf("GetNamespace: %v", err)
	}
	body := largeDataset(24, 1<<20)
	if len(body) < 24<<20 {
		t.Fatalf("dataset is %d bytes, want over 24 MiB", len(body))
	}
	uploadMultipart(t, objs, *ns.Value, ten, "large.jsonl", body)
	cluster := createCluster(t, c, ten, 1)
	// 24 examples: 19 train, batch 4: 5 steps an epoch, 20 in all.
	cfg := generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(4), TrainingBatchSize: common.Int(4),
		LearningRate: common.Float64(0.005), LogModelMetricsIntervalInSteps: common.Int(2), EarlyStoppingPatience: common.Int(0)}

	start := time.Now()
	refID, refWR := createModel(t, c, ten, "tiny-128", cluster, *ns.Value, "large.jsonl", "uninterrupted", cfg)
	if wr := waitWR(t, c, refWR, 3*time.Minute); wr.Status != generativeai.OperationStatusSucceeded {
		t.Fatalf("uninterrupted run: %s (%s; %q)", wr.Status, deref(getModel(t, c, refID).LifecycleDetails), wrErrors(t, c, refWR))
	}
	t.Logf("uninterrupted run on %d bytes took %v", len(body), time.Since(start).Round(time.Millisecond))
	stopGantry(t, g)

	// The copy pauses halfway (a test-only trainer option) so that the
	// kill lands in the middle of the download.
	g = startGantry(t, bin, dataDir, finetune.PauseEnv+"=download=2m")
	c, _, _ = g.clients(t, dataDir)
	id, wrID := createModel(t, c, ten, "tiny-128", cluster, *ns.Value, "large.jsonl", "killed", cfg)
	partial := ""
	waitFor(t, "a half-downloaded dataset", time.Minute, func() bool {
		p, n := largestFile(filepath.Join(workDir(dataDir, id), ".dataset.jsonl.tmp*"))
		partial = p
		return n >= int64(len(body)/2)
	})
	killGantry(t, g)
	if _, err := os.Stat(filepath.Join(workDir(dataDir, id), "dataset.jsonl")); !os.IsNotExist(err) {
		t.Fatalf("dataset.jsonl exists after a kill mid-download (%v)", err)
	}
	st, err := os.Stat(partial)
	if err != nil || st.Size() >= int64(len(body)) {
		t.Fatalf("partial download %s: %v, %v bytes of %d", partial, err, st.Size(), len(body))
	}
	t.Logf("killed the server with %d of %d bytes downloaded", st.Size(), len(body))

	// The restarted server downloads again; kill it once more early in
	// training, after the first checkpoint.
	g = startGantry(t, bin, dataDir)
	c, _, _ = g.clients(t, dataDir)
	restarted := time.Now()
	var pct float32
	waitFor(t, "training past its first checkpoint", 2*time.Minute, func() bool {
		r, err := c.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &wrID})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != generativeai.OperationStatusInProgress && r.Status != generativeai.OperationStatusAccepted {
			t.Fatalf("work request %s before the second kill", r.Status)
		}
		_, cerr := os.Stat(filepath.Join(workDir(dataDir, id), "checkpoints", "LATEST"))
		pct = deref(r.PercentComplete)
		return cerr == nil && pct > 0
	})
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("partial download %s left behind (%v)", partial, err)
	}
	if b, _ := os.ReadFile(g.logs); !bytes.Contains(b, []byte("removed the partial dataset download of an earlier attempt")) {
		t.Errorf("the restarted server did not log removing the partial download (log %s, %d bytes)", g.logs, len(b))
	}
	killGantry(t, g)
	if pct >= 100 {
		t.Fatalf("training went too fast to be interrupted: %v%%", pct)
	}
	t.Logf("killed the server again at %v%%, %v after the first restart", pct, time.Since(restarted).Round(time.Millisecond))

	g = startGantry(t, bin, dataDir)
	c, _, _ = g.clients(t, dataDir)
	restarted = time.Now()
	checkSameRun(t, g, c, dataDir, refID, refWR, id, wrID, 3)
	t.Logf("resumed job ended %v after the second restart", time.Since(restarted).Round(time.Millisecond))
}

// TestLargeArtifactKilledDuringUpload trains a Vanilla model whose
// trained layers make an artifact of tens of MB, uninterrupted; then a
// second one, and SIGKILLs the server halfway through writing that
// artifact into the bucket. The restarted server resumes from the final
// checkpoint, uploads again and ends the model ACTIVE with the
// uninterrupted run's artifact bytes and metrics; the bucket holds each
// artifact object once and no orphaned data.
func TestLargeArtifactKilledDuringUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gantry and trains a 30 MB Vanilla model twice")
	}
	bin := buildGantry(t)
	dataDir := t.TempDir()
	installBaseModel(t, dataDir, "wide", map[string]any{"hidden_size": 512, "intermediate_size": 2048,
		"num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 64})
	ctx := context.Background()

	g := startGantry(t, bin, dataDir)
	c, objs, ten := g.clients(t, dataDir)
	nsr, err := objs.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		t.Fatalf("GetNamespace: %v", err)
	}
	ns := *nsr.Value
	upload(t, objs, ns, ten, "train.jsonl", dataset(20))
	cluster := createCluster(t, c, ten, 1)
	// 20 examples: 16 train, batch 8: 2 steps an epoch, 4 in all.
	cfg := generativeai.VanillaTrainingConfig{TotalTrainingEpochs: common.Int(2), TrainingBatchSize: common.Int(8),
		LearningRate: common.Float64(0.001), NumOfLastLayers: common.Int(2), LogModelMetricsIntervalInSteps: common.Int(1),
		EarlyStoppingPatience: common.Int(0)}

	start := time.Now()
	refID, refWR := createModel(t, c, ten, "wide", cluster, ns, "train.jsonl", "uninterrupted", cfg)
	if wr := waitWR(t, c, refWR, 3*time.Minute); wr.Status != generativeai.OperationStatusSucceeded {
		t.Fatalf("uninterrupted run: %s (%s; %q)", wr.Status, deref(getModel(t, c, refID).LifecycleDetails), wrErrors(t, c, refWR))
	}
	t.Logf("uninterrupted run took %v", time.Since(start).Round(time.Millisecond))
	stopGantry(t, g)

	bucketDir := filepath.Join(dataDir, "objects", ns, server.ArtifactsBucket)
	g = startGantry(t, bin, dataDir, finetune.PauseEnv+"=upload=2m")
	c, _, _ = g.clients(t, dataDir)
	id, wrID := createModel(t, c, ten, "wide", cluster, ns, "train.jsonl", "killed", cfg)
	var partial int64
	// adapter_model.safetensors (about 31 MB) pauses at its half.
	waitFor(t, "a half-written artifact object", 2*time.Minute, func() bool {
		_, partial = largestFile(filepath.Join(bucketDir, "tmp", "data-*"))
		return partial >= 15<<20
	})
	if d := deref(getModel(t, c, id).LifecycleDetails); d != "uploading the trained weights" {
		t.Fatalf("lifecycleDetails %q while an artifact object is being written", d)
	}
	killGantry(t, g)
	t.Logf("killed the server with %d bytes of an artifact object written", partial)

	g = startGantry(t, bin, dataDir)
	c, objs, _ = g.clients(t, dataDir)
	restarted := time.Now()
	checkSameRun(t, g, c, dataDir, refID, refWR, id, wrID, 2)
	t.Logf("resumed job ended %v after the restart", time.Since(restarted).Round(time.Millisecond))

	// Each artifact object once under each model's prefix, the same names
	// for both, the artifact tens of MB, and no data file in the bucket
	// that no object owns.
	names := func(id string) ([]string, int64) {
		r, err := objs.ListObjects(ctx, objectstorage.ListObjectsRequest{NamespaceName: &ns, BucketName: common.String(server.ArtifactsBucket),
			Prefix: common.String(server.ArtifactPrefix(id)), Fields: common.String("name,size"), Limit: common.Int(1000)})
		if err != nil {
			t.Fatalf("ListObjects: %v", err)
		}
		var out []string
		var total int64
		for _, o := range r.Objects {
			out = append(out, strings.TrimPrefix(deref(o.Name), server.ArtifactPrefix(id)))
			total += deref(o.Size)
		}
		return out, total
	}
	refNames, refSize := names(refID)
	gotNames, gotSize := names(id)
	if !slices.Equal(refNames, gotNames) || len(slices.Compact(slices.Clone(gotNames))) != len(gotNames) {
		t.Errorf("artifact objects %q, uninterrupted %q", gotNames, refNames)
	}
	t.Logf("artifact objects %q, %d bytes", gotNames, gotSize)
	if gotSize != refSize || gotSize < 20<<20 {
		t.Errorf("artifacts %d bytes, uninterrupted %d; want the same, over 20 MiB", gotSize, refSize)
	}
	data, _ := filepath.Glob(filepath.Join(bucketDir, "d", "*"))
	if want := len(refNames) + len(gotNames); len(data) != want {
		t.Errorf("bucket %s holds %d data files for %d objects", server.ArtifactsBucket, len(data), want)
	}
	if tmps, _ := filepath.Glob(filepath.Join(bucketDir, "tmp", "*")); len(tmps) != 0 {
		t.Errorf("temporary files left in the bucket: %q", tmps)
	}
}
