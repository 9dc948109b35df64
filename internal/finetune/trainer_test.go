package finetune_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/finetune"
	"github.com/gantryml/gantry/internal/jobs"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/server"
)

// fakeProgress records what a Trainer reports; onLog, when set, sees
// every log line.
type fakeProgress struct {
	mu      sync.Mutex
	logs    []string
	percent float64
	onLog   func(string)
}

func (p *fakeProgress) Log(ctx context.Context, msg string) {
	p.mu.Lock()
	p.logs = append(p.logs, msg)
	f := p.onLog
	p.mu.Unlock()
	if f != nil {
		f(msg)
	}
}

func (p *fakeProgress) Percent(ctx context.Context, pct float64) {
	p.mu.Lock()
	p.percent = pct
	p.mu.Unlock()
}

func (p *fakeProgress) LogMessages(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...), nil
}

// directJob sets up an object store with a dataset and a base model, and
// returns a TrainJob for them (no server).
func directJob(t *testing.T, tc core.TrainingConfig) (server.TrainJob, *objectstore.Store) {
	t.Helper()
	ctx := context.Background()
	dataDir := t.TempDir()
	installBaseModels(t, dataDir)
	objs, err := objectstore.Open(filepath.Join(dataDir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := objs.EnsureBucket(ctx, "ns", "data", "ocid1.tenancy.oc1..t"); err != nil {
		t.Fatal(err)
	}
	if _, err := objs.PutObject(ctx, "ns", "data", "train.jsonl", strings.NewReader(dataset(20)), objectstore.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	m := &core.Model{ID: "ocid1.generativeaimodel.oc1..direct", TenancyID: "ocid1.tenancy.oc1..t", LifecycleState: core.ModelCreating,
		FineTuneDetails: &core.FineTuneDetails{Dataset: core.Dataset{Namespace: "ns", Bucket: "data", Object: "train.jsonl"}, TrainingConfig: tc}}
	base := &server.BaseModel{Dir: filepath.Join(dataDir, server.BaseModelsDir, chatBase), NumLayers: 2,
		Model: &core.Model{DisplayName: chatBase, Capabilities: []string{core.CapabilityFineTune, core.CapabilityChat}}}
	return server.TrainJob{Model: m, BaseModel: base, Objects: objs, Namespace: "ns", WorkDir: filepath.Join(dataDir, "jobs", m.ID), Attempt: 1}, objs
}

// TestShutdownKeepsCheckpointThenMismatchRestarts stops a job as a
// shutdown does (its working files stay), then runs it again with another
// learning rate: the checkpoint does not match, so training starts over
// and finishes.
func TestShutdownKeepsCheckpointThenMismatchRestarts(t *testing.T) {
	tc := core.TrainingConfig{Type: core.TrainingConfigLoRA, TotalTrainingEpochs: 2, LearningRate: 0.001, TrainingBatchSize: 2,
		LogModelMetricsIntervalInSteps: 1, LoraR: 4, LoraAlpha: 4}
	job, objs := directJob(t, tc)
	tr := &finetune.Trainer{Threads: 1, CheckpointEvery: 2}

	ctx, cancel := context.WithCancelCause(context.Background())
	p := &fakeProgress{}
	p.onLog = func(msg string) {
		if strings.HasPrefix(msg, "metrics: epoch 1, step 5/") {
			cancel(jobs.ErrShutdown)
		}
	}
	_, err := tr.Train(ctx, job, p)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Train after shutdown: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(job.WorkDir, "checkpoints", "LATEST")); err != nil {
		t.Fatalf("a shut-down job lost its checkpoint: %v", err)
	}

	job.Model.FineTuneDetails.TrainingConfig.LearningRate = 0.002
	p2 := &fakeProgress{}
	art, err := tr.Train(context.Background(), job, p2)
	if err != nil {
		t.Fatalf("Train with a mismatching checkpoint: %v", err)
	}
	if art.Metrics == nil || art.Metrics.Type != core.MetricsTypeChat || !(art.Metrics.FinalLoss > 0) {
		t.Errorf("metrics %+v", art.Metrics)
	}
	if !strings.Contains(strings.Join(p2.logs, "\n"), "does not match") {
		t.Errorf("no log line says the checkpoint was discarded: %q", p2.logs)
	}
	if _, err := os.Stat(job.WorkDir); !os.IsNotExist(err) {
		t.Errorf("working directory left after success: %v", err)
	}
	res, err := objs.ListObjects(context.Background(), "ns", server.ArtifactsBucket, objectstore.ListOptions{Prefix: server.ArtifactPrefix(job.Model.ID)})
	if err != nil || len(res.Objects) != 2 {
		t.Errorf("artifacts: %v, %d objects; want adapter config and weights", err, len(res.Objects))
	}
}

// TestCanceledRemovesWorkDir stops a job as DeleteModel does: its working
// files go.
func TestCanceledRemovesWorkDir(t *testing.T) {
	tc := core.TrainingConfig{Type: core.TrainingConfigTFew, TotalTrainingEpochs: 3, LearningRate: 0.01, TrainingBatchSize: 1}
	job, _ := directJob(t, tc)
	tr := &finetune.Trainer{Threads: 1}
	ctx, cancel := context.WithCancelCause(context.Background())
	p := &fakeProgress{onLog: func(msg string) {
		if strings.HasPrefix(msg, "metrics: epoch 1, step 3/") {
			cancel(jobs.ErrCanceled)
		}
	}}
	if _, err := tr.Train(ctx, job, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("Train after cancel: %v", err)
	}
	if _, err := os.Stat(job.WorkDir); !os.IsNotExist(err) {
		t.Errorf("working directory left after cancellation: %v", err)
	}
}
