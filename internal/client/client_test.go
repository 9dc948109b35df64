package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/client"
	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// fakeTrainer logs metric lines and writes artifacts, standing in for the
// training engine so the client's metrics and download paths can be tested.
type fakeTrainer struct{ objs func() *objectstore.Store }

func (f fakeTrainer) Train(ctx context.Context, job server.TrainJob, p server.Progress) (server.Artifacts, error) {
	for step := 1; step <= 6; step++ {
		line := map[string]any{"step": step * 10, "epoch": 1 + step/4, "train_loss": 3.0 / float64(step), "learning_rate": 0.0002}
		if step%2 == 0 {
			line["val_loss"] = 3.2 / float64(step)
			line["val_accuracy"] = 0.1 * float64(step)
		}
		b, _ := json.Marshal(line)
		p.Log(ctx, string(b))
		p.Percent(ctx, float64(step)/6*100)
	}
	p.Log(ctx, "not a metrics line {\"x\":1}")
	ns := job.Model.FineTuneDetails.Dataset.Namespace
	objs := f.objs()
	if _, err := objs.EnsureBucket(ctx, ns, client.ArtifactBucket, job.Model.TenancyID); err != nil {
		return server.Artifacts{}, err
	}
	for name, body := range map[string]string{"adapter/adapter_config.json": `{"r":8}`, "adapter/adapter_model.safetensors": "weights", "training_args.json": "{}"} {
		if _, err := objs.PutObject(ctx, ns, client.ArtifactBucket, job.Model.ID+"/"+name, strings.NewReader(body), objectstore.PutOptions{}); err != nil {
			return server.Artifacts{}, err
		}
	}
	return server.Artifacts{Metrics: &core.ModelMetrics{Type: core.MetricsTypeTextGeneration, FinalAccuracy: 0.6, FinalLoss: 0.53}}, nil
}

func newClient(t *testing.T, s *servertest.Server) (*client.Client, *bytes.Buffer) {
	t.Helper()
	c, err := client.New(client.Config{ConfigFile: auth.ConfigPath(s.DataDir), Endpoint: s.BaseURL})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Out, c.Err = &out, &bytes.Buffer{}
	c.PollInterval = 50 * time.Millisecond
	return c, &out
}

// data decodes the {"data": ...} of a JSON output and resets the buffer.
func data(t *testing.T, out *bytes.Buffer) (any, map[string]any) {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal(out.Bytes(), &top); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	out.Reset()
	if _, ok := top["data"]; !ok {
		t.Fatalf("output has no data: %v", top)
	}
	return top["data"], top
}

func TestClientEndToEnd(t *testing.T) {
	var srv *servertest.Server
	s := servertest.Start(t, servertest.Options{Trainer: fakeTrainer{objs: func() *objectstore.Store { return srv.Server.Objects }}})
	srv = s
	c, out := newClient(t, s)
	ctx := context.Background()

	// Object storage: mb, put (multipart and single), ls, get.
	if err := c.MakeBucket(ctx, "datasets", ""); err != nil {
		t.Fatal(err)
	}
	d, top := data(t, out)
	if d.(map[string]any)["name"] != "datasets" || top["etag"] == nil {
		t.Errorf("mb output %v", top)
	}
	dir := t.TempDir()
	var lines strings.Builder
	for i := 0; lines.Len() < 3<<20; i++ {
		fmt.Fprintf(&lines, `{"prompt":"question %d","completion":"answer %d"}`+"\n", i, i)
	}
	train := filepath.Join(dir, "train.jsonl")
	os.WriteFile(train, []byte(lines.String()), 0o644)
	if err := c.PutFile(ctx, train, "datasets", "", client.PutParams{PartSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	if m := d.(map[string]any); m["name"] != "train.jsonl" || !strings.HasSuffix(m["md5"].(string), fmt.Sprintf("-%d", (lines.Len()+1<<20-1)/(1<<20))) {
		t.Errorf("put output %v", m)
	}
	small := filepath.Join(dir, "small.txt")
	os.WriteFile(small, []byte("hello"), 0o644)
	if err := c.PutFile(ctx, small, "datasets", "sub/dir/small.txt", client.PutParams{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := c.ListObjects(ctx, "datasets", "", ""); err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	objs := d.(map[string]any)["objects"].([]any)
	if len(objs) != 2 || objs[0].(map[string]any)["name"] != "sub/dir/small.txt" || objs[1].(map[string]any)["size"].(float64) != float64(lines.Len()) {
		t.Errorf("ls output %v", objs)
	}
	got := filepath.Join(dir, "got.jsonl")
	if err := c.GetFile(ctx, "datasets", "train.jsonl", got); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); string(b) != lines.String() {
		t.Errorf("downloaded %d bytes, want %d", len(b), lines.Len())
	}

	if err := c.DeleteObject(ctx, "datasets", "sub/dir/small.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBucket(ctx, "datasets"); err == nil || !strings.Contains(err.Error(), "409 BucketNotEmpty") {
		t.Errorf("delete non-empty bucket: %v", err)
	}

	// Cluster.
	if err := c.CreateCluster(ctx, client.ClusterCreateParams{DisplayName: "ft", UnitShape: "LARGE_GENERIC", UnitCount: 1, Wait: true}); err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	cl := d.(map[string]any)
	if cl["lifecycle-state"] != "ACTIVE" || cl["display-name"] != "ft" {
		t.Fatalf("cluster after --wait: %v", cl)
	}
	clusterID := cl["id"].(string)

	// Base models.
	if err := c.ListModels(ctx, client.ModelListParams{Capability: "FINE_TUNE", All: true}); err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	models := d.([]any)
	if len(models) == 0 {
		t.Fatal("no FINE_TUNE base model listed")
	}
	baseID := models[0].(map[string]any)["id"].(string)

	// Create a model and wait for training.
	err := c.CreateModel(ctx, client.ModelCreateParams{
		DisplayName: "my-model", BaseModelID: baseID, ClusterID: clusterID, Dataset: "datasets/train.jsonl",
		Training: client.TrainingParams{Type: "lora", TotalTrainingEpochs: ptr(1)}, Wait: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	m := d.(map[string]any)
	if m["lifecycle-state"] != "ACTIVE" {
		t.Fatalf("model after --wait: %v", m)
	}
	modelID := m["id"].(string)
	ftd := m["fine-tune-details"].(map[string]any)
	if ftd["training-config"].(map[string]any)["total-training-epochs"].(float64) != 1 {
		t.Errorf("training config %v", ftd["training-config"])
	}

	// Metrics.
	pts, err := c.ModelMetrics(ctx, modelID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 6 || pts[0].Step != 10 || pts[1].ValLoss == nil || pts[0].ValLoss != nil {
		t.Errorf("metrics %+v", pts)
	}
	plot := filepath.Join(dir, "loss.png")
	if err := c.PrintModelMetrics(ctx, modelID, false, plot); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "TRAIN-LOSS") || strings.Count(out.String(), "\n") != 7 {
		t.Errorf("metrics table:\n%s", out)
	}
	out.Reset()
	if st, err := os.Stat(plot); err != nil || st.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}

	// Download.
	files, err := c.DownloadModel(ctx, modelID, filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Errorf("downloaded %v", files)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "model", "adapter", "adapter_model.safetensors")); err != nil || string(b) != "weights" {
		t.Errorf("adapter: %q %v", b, err)
	}

	// Update, table output, work requests.
	if err := c.UpdateModel(ctx, modelID, client.ModelUpdateParams{Description: ptr("tuned")}); err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	if d.(map[string]any)["description"] != "tuned" {
		t.Errorf("update output %v", d)
	}
	c.Format = "table"
	if err := c.ListWorkRequests(ctx, client.WorkRequestListParams{ResourceID: modelID}); err != nil {
		t.Fatal(err)
	}
	if tbl := out.String(); !strings.Contains(tbl, "OPERATION-TYPE") || !strings.Contains(tbl, "CREATE_MODEL") || !strings.Contains(tbl, "SUCCEEDED") {
		t.Errorf("work request table:\n%s", tbl)
	}
	out.Reset()
	c.Format = "json"

	// Delete and wait.
	if err := c.DeleteModel(ctx, modelID, "", true); err != nil {
		t.Fatal(err)
	}
	d, _ = data(t, out)
	if d.(map[string]any)["lifecycle-state"] != "DELETED" {
		t.Errorf("model after delete --wait: %v", d)
	}
	// A service error reaches the caller with its code.
	err = c.GetModel(ctx, "ocid1.generativeaimodel.oc1..nope")
	if err == nil || !strings.Contains(err.Error(), "NotAuthorizedOrNotFound") {
		t.Errorf("get missing model: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"lifecycleState":       "lifecycle-state",
		"dedicatedAiClusterId": "dedicated-ai-cluster-id",
		"id":                   "id",
		"timeCreated":          "time-created",
		"opcMultipartMD5":      "opc-multipart-md5",
		"loraR":                "lora-r",
	} {
		if got := client.Kebab(in); got != want {
			t.Errorf("Kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintKeepsTagKeys(t *testing.T) {
	var b bytes.Buffer
	v := map[string]any{"displayName": "x", "freeformTags": map[string]string{"myTag": "v"}}
	if err := client.Print(&b, "json", v, map[string]string{"etag": "e1", "opc-work-request-id": ""}); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.Contains(s, `"display-name": "x"`) || !strings.Contains(s, `"myTag": "v"`) || !strings.Contains(s, `"etag": "e1"`) || strings.Contains(s, "opc-work-request-id") {
		t.Errorf("Print output:\n%s", s)
	}
}

func TestParseDataset(t *testing.T) {
	for _, c := range []struct {
		spec, ns, wantNS, wantB, wantO string
		ok                             bool
	}{
		{"bucket/a/b.jsonl", "myns", "myns", "bucket", "a/b.jsonl", true},
		{"myns/bucket/a.jsonl", "myns", "myns", "bucket", "a.jsonl", true},
		{"bucket", "myns", "", "", "", false},
		{"/x", "myns", "", "", "", false},
	} {
		ns, b, o, err := client.ParseDataset(c.spec, c.ns)
		if (err == nil) != c.ok || ns != c.wantNS || b != c.wantB || o != c.wantO {
			t.Errorf("ParseDataset(%q) = %q %q %q %v", c.spec, ns, b, o, err)
		}
	}
}

func TestParseMetricLine(t *testing.T) {
	p, ok := client.ParseMetricLine(`metrics {"step":5,"epoch":1,"train_loss":1.5,"learning_rate":0.01,"val_loss":1.7}`)
	if !ok || p.Step != 5 || p.TrainLoss != 1.5 || p.ValLoss == nil || *p.ValLoss != 1.7 || p.ValAccuracy != nil {
		t.Errorf("parsed %+v %v", p, ok)
	}
	for _, bad := range []string{"training started", `{"step":1}`, `{"train_loss": oops}`} {
		if _, ok := client.ParseMetricLine(bad); ok {
			t.Errorf("ParseMetricLine(%q) accepted", bad)
		}
	}
}

func TestRenderLoss(t *testing.T) {
	v := 2.5
	pts := []client.MetricPoint{{Step: 1, TrainLoss: 3}, {Step: 2, TrainLoss: 2, ValLoss: &v}, {Step: 3, TrainLoss: 1}}
	img, err := client.RenderLoss(pts)
	if err != nil {
		t.Fatal(err)
	}
	count := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			count[img.RGBAAt(x, y)]++
		}
	}
	train, val, black := color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{0, 0, 0, 255}
	if count[train] < 200 || count[val] < 20 || count[black] < 500 {
		t.Errorf("pixels: train %d, val %d, axis/text %d", count[train], count[val], count[black])
	}
	// A long noisy run: every segment direction and slope.
	var many []client.MetricPoint
	for s := 1; s <= 300; s++ {
		p := client.MetricPoint{Step: s, TrainLoss: 2.5*math.Exp(-float64(s)/80) + 0.4 + 0.1*math.Sin(float64(s)*1.7)}
		if s%25 == 0 {
			v := 2.6*math.Exp(-float64(s)/90) + 0.5
			p.ValLoss = &v
		}
		many = append(many, p)
	}
	if err := client.PlotLoss(filepath.Join(t.TempDir(), "loss.png"), many); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RenderLoss(nil); err == nil {
		t.Error("RenderLoss of no points succeeded")
	}
}

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := client.NewProgress(&b)
	for _, u := range []struct {
		status string
		pct    float64
	}{{"ACCEPTED", 0}, {"IN_PROGRESS", 1}, {"IN_PROGRESS", 5}, {"IN_PROGRESS", 12}, {"IN_PROGRESS", 15}, {"IN_PROGRESS", 99}, {"SUCCEEDED", 100}} {
		p.Update("CREATE_MODEL", u.status, u.pct)
	}
	p.Done()
	want := "CREATE_MODEL ACCEPTED 0%\nCREATE_MODEL IN_PROGRESS 1%\nCREATE_MODEL IN_PROGRESS 12%\nCREATE_MODEL IN_PROGRESS 99%\nCREATE_MODEL SUCCEEDED 100%\n"
	if b.String() != want {
		t.Errorf("progress lines:\n%s\nwant:\n%s", b.String(), want)
	}
}
