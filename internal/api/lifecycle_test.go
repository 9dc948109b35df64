package api_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// gateTrainer is a test double of the training engine: each Train call
// reports that it started, logs, and then waits for a release (ending
// with fixed metrics) or for its context (returning its error).
type gateTrainer struct {
	started chan string // model IDs, in the order training started
	mu      sync.Mutex
	release map[string]chan struct{}
	attempt map[string]int
	// objs and ns, when set, receive an artifact object per model.
	objs *objectstore.Store
	ns   string
	// hold, when set, is waited for after a canceled context, before Train returns.
	hold chan struct{}
}

func newGateTrainer() *gateTrainer {
	return &gateTrainer{started: make(chan string, 16), release: map[string]chan struct{}{}, attempt: map[string]int{}}
}

func (g *gateTrainer) gate(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release[id] == nil {
		g.release[id] = make(chan struct{})
	}
	return g.release[id]
}

func (g *gateTrainer) Train(ctx context.Context, job server.TrainJob, p server.Progress) (server.Artifacts, error) {
	g.mu.Lock()
	g.attempt[job.Model.ID] = job.Attempt
	objs, ns := g.objs, g.ns
	g.mu.Unlock()
	if st, err := os.Stat(job.WorkDir); err != nil || !st.IsDir() || job.Objects == nil || job.Namespace == "" {
		return server.Artifacts{}, fmt.Errorf("train job without a work directory (%v), object store or namespace", err)
	}
	if ns != "" && job.Namespace != ns {
		return server.Artifacts{}, fmt.Errorf("train job namespace %s, want %s", job.Namespace, ns)
	}
	if objs != nil {
		if _, err := objs.EnsureBucket(ctx, ns, server.ArtifactsBucket, job.Model.TenancyID); err != nil {
			return server.Artifacts{}, err
		}
		if _, err := objs.PutObject(ctx, ns, server.ArtifactsBucket, server.ArtifactPrefix(job.Model.ID)+"adapter.bin", strings.NewReader("weights"), objectstore.PutOptions{}); err != nil {
			return server.Artifacts{}, err
		}
	}
	gate := g.gate(job.Model.ID)
	p.Log(ctx, "gate trainer: step 1 of "+job.BaseModel.Model.DisplayName)
	p.Percent(ctx, 50)
	g.started <- job.Model.ID
	select {
	case <-ctx.Done():
		g.mu.Lock()
		hold := g.hold
		g.mu.Unlock()
		if hold != nil {
			<-hold
		}
		return server.Artifacts{}, ctx.Err()
	case <-gate:
		return server.Artifacts{Metrics: &core.ModelMetrics{Type: core.MetricsTypeChat, FinalAccuracy: 0.75, FinalLoss: 0.5}}, nil
	}
}

func (g *gateTrainer) waitStarted(t *testing.T, want string) {
	t.Helper()
	select {
	case id := <-g.started:
		if id != want {
			t.Fatalf("training started for %s, want %s", id, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("training of %s did not start", want)
	}
}

func (g *gateTrainer) notStarted(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case id := <-g.started:
		t.Fatalf("training of %s started while the cluster had no free unit", id)
	case <-time.After(d):
	}
}

func getModel(t *testing.T, c generativeai.GenerativeAiClient, id string) generativeai.Model {
	t.Helper()
	g, err := c.GetModel(context.Background(), generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		t.Fatal(err)
	}
	return g.Model
}

func getWR(t *testing.T, c generativeai.GenerativeAiClient, id string) generativeai.WorkRequest {
	t.Helper()
	g, err := c.GetWorkRequest(context.Background(), generativeai.GetWorkRequestRequest{WorkRequestId: &id})
	if err != nil {
		t.Fatal(err)
	}
	return g.WorkRequest
}

func waitModelState(t *testing.T, c generativeai.GenerativeAiClient, id string, want generativeai.ModelLifecycleStateEnum) generativeai.Model {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := getModel(t, c, id)
		if m.LifecycleState == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("model %s is %s, want %s", id, m.LifecycleState, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFineTuneJobs checks the fine-tuning queue through the API: a
// cluster runs unitCount jobs at once, raising unitCount starts waiting
// ones, a cluster with jobs cannot be deleted, DeleteModel stops a
// running or queued job, and a finished training makes the model ACTIVE
// with its metrics.
func TestFineTuneJobs(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			gt := newGateTrainer()
			s := startServer(t, b.postgres, gt)
			gt.mu.Lock()
			gt.objs, gt.ns = s.Server.Objects, s.Namespace
			gt.mu.Unlock()
			fineTuneJobs(t, s, gt)
		})
	}
}

func fineTuneJobs(t *testing.T, s *servertest.Server, gt *gateTrainer) {
	ctx := context.Background()
	c := s.GenAI
	ten := s.TenancyID
	base := server.BaseModelID(server.DefaultBaseModelName)
	putDataset(t, s, "data", "train.jsonl")
	ft := createCluster(t, c, ten, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)

	create := func(name string) generativeai.CreateModelResponse {
		d := modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
		d.DisplayName = &name
		r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		if err != nil {
			t.Fatalf("CreateModel %s: %v", name, err)
		}
		return r
	}
	a := create("a")
	gt.waitStarted(t, *a.Id)
	b := create("b")
	gt.notStarted(t, 500*time.Millisecond)
	if wr := getWR(t, c, *b.OpcWorkRequestId); wr.Status != generativeai.OperationStatusAccepted {
		t.Errorf("queued model's work request is %s, want ACCEPTED", wr.Status)
	}
	if wr := getWR(t, c, *a.OpcWorkRequestId); wr.Status != generativeai.OperationStatusInProgress || *wr.PercentComplete != 50 {
		t.Errorf("training model's work request is %s at %v%%, want IN_PROGRESS at 50%%", wr.Status, *wr.PercentComplete)
	}

	_, err := c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: ft.Id})
	svcErr(t, err, 409, "IncorrectState", "jobs")

	// A second unit starts the waiting job.
	u, err := c.UpdateDedicatedAiCluster(ctx, generativeai.UpdateDedicatedAiClusterRequest{DedicatedAiClusterId: ft.Id,
		UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{UnitCount: common.Int(2)}})
	if err != nil || *u.UnitCount != 2 {
		t.Fatalf("raise unitCount: %v", err)
	}
	gt.waitStarted(t, *b.Id)

	// Deleting a training model stops its job: its work request is
	// CANCELING until the trainer returns, then CANCELED.
	hold := make(chan struct{})
	gt.mu.Lock()
	gt.hold = hold
	gt.mu.Unlock()
	d, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: a.Id})
	if err != nil {
		t.Fatal(err)
	}
	if wr := getWR(t, c, *a.OpcWorkRequestId); wr.Status != generativeai.OperationStatusCanceling {
		t.Errorf("fine-tune work request of a model being deleted: %s, want CANCELING", wr.Status)
	}
	time.Sleep(300 * time.Millisecond) // the runner sees the cancel flag; the trainer is held
	if wr := getWR(t, c, *a.OpcWorkRequestId); wr.Status != generativeai.OperationStatusCanceling {
		t.Errorf("fine-tune work request while its trainer stops: %s, want CANCELING", wr.Status)
	}
	gt.mu.Lock()
	gt.hold = nil
	gt.mu.Unlock()
	close(hold)
	if wr := waitWR(t, c, *d.OpcWorkRequestId); wr.Status != generativeai.OperationStatusSucceeded {
		t.Errorf("delete of a training model: %s", wr.Status)
	}
	waitModelState(t, c, *a.Id, generativeai.ModelLifecycleStateDeleted)
	if wr := waitWR(t, c, *a.OpcWorkRequestId); wr.Status != generativeai.OperationStatusCanceled {
		t.Errorf("fine-tune work request of a deleted model: %s, want CANCELED", wr.Status)
	}
	if _, err := s.Server.Objects.HeadObject(ctx, s.Namespace, server.ArtifactsBucket, server.ArtifactPrefix(*a.Id)+"adapter.bin"); !errors.Is(err, objectstore.ErrObjectNotFound) {
		t.Errorf("a deleted model's artifact is still there: %v", err)
	}
	if _, err := s.Server.Objects.HeadObject(ctx, s.Namespace, server.ArtifactsBucket, server.ArtifactPrefix(*b.Id)+"adapter.bin"); err != nil {
		t.Errorf("deleting one model removed another's artifact: %v", err)
	}

	// Deleting a queued model: fill both units, queue a third.
	cc := create("c")
	gt.waitStarted(t, *cc.Id)
	q := create("queued")
	gt.notStarted(t, 300*time.Millisecond)
	d, err = c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: q.Id})
	if err != nil {
		t.Fatal(err)
	}
	waitWR(t, c, *d.OpcWorkRequestId)
	waitModelState(t, c, *q.Id, generativeai.ModelLifecycleStateDeleted)
	if wr := getWR(t, c, *q.OpcWorkRequestId); wr.Status != generativeai.OperationStatusCanceled {
		t.Errorf("fine-tune work request of a model deleted while queued: %s, want CANCELED", wr.Status)
	}

	// Finishing training makes the model ACTIVE with its metrics.
	close(gt.gate(*b.Id))
	close(gt.gate(*cc.Id))
	if wr := waitWR(t, c, *b.OpcWorkRequestId); wr.Status != generativeai.OperationStatusSucceeded || *wr.PercentComplete != 100 {
		t.Errorf("trained model's work request: %s %v%%", wr.Status, *wr.PercentComplete)
	}
	m := waitModelState(t, c, *b.Id, generativeai.ModelLifecycleStateActive)
	mm, ok := m.ModelMetrics.(generativeai.ChatModelMetrics)
	if !ok || *mm.FinalAccuracy != 0.75 || *mm.FinalLoss != 0.5 {
		t.Errorf("trained model's metrics: %#v", m.ModelMetrics)
	}
	logs, err := c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: b.OpcWorkRequestId})
	if err != nil {
		t.Fatal(err)
	}
	var sawTrainer bool
	for _, l := range logs.Items {
		sawTrainer = sawTrainer || *l.Message == "gate trainer: step 1 of "+server.DefaultBaseModelName
	}
	if !sawTrainer {
		t.Errorf("the trainer's log line is not in the work request logs")
	}
	waitModelState(t, c, *cc.Id, generativeai.ModelLifecycleStateActive)

	r, err := c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: ft.Id})
	if err != nil {
		t.Fatalf("delete an idle cluster: %v", err)
	}
	if wr := waitWR(t, c, *r.OpcWorkRequestId); wr.Status != generativeai.OperationStatusSucceeded {
		t.Errorf("cluster delete: %s", wr.Status)
	}
}

// TestShutdownResumesTraining stops a server while a model trains: the job
// goes back to the queue, and the next server on the same data resumes it
// to the end (a graceful release does not count as a failed attempt).
func TestShutdownResumesTraining(t *testing.T) {
	ctx := context.Background()
	gt := newGateTrainer()
	s := startServer(t, false, gt)
	putDataset(t, s, "data", "train.jsonl")
	ft := createCluster(t, s.GenAI, s.TenancyID, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)
	d := modelDetails(s.TenancyID, server.BaseModelID(server.DefaultBaseModelName), *ft.Id, s.Namespace, "data", "train.jsonl", nil)
	r, err := s.GenAI.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
	if err != nil {
		t.Fatal(err)
	}
	gt.waitStarted(t, *r.Id)
	s.Stop()

	gt2 := newGateTrainer()
	close(gt2.gate(*r.Id))
	s2 := servertest.Start(t, servertest.Options{DataDir: s.DataDir, Trainer: gt2})
	gt2.waitStarted(t, *r.Id)
	m := waitModelState(t, s2.GenAI, *r.Id, generativeai.ModelLifecycleStateActive)
	if m.ModelMetrics == nil {
		t.Errorf("resumed model has no metrics")
	}
	gt2.mu.Lock()
	attempt := gt2.attempt[*r.Id]
	gt2.mu.Unlock()
	if attempt != 1 {
		t.Errorf("training resumed after a graceful shutdown is attempt %d, want 1", attempt)
	}
}

// TestClusterGoneBeforeTraining: a job still queued on a cluster that is
// deleted meanwhile (a CreateModel racing DeleteDedicatedAiCluster) fails
// its model instead of training it.
func TestClusterGoneBeforeTraining(t *testing.T) {
	ctx := context.Background()
	gt := newGateTrainer()
	s := startServer(t, false, gt)
	putDataset(t, s, "data", "train.jsonl")
	ft := createCluster(t, s.GenAI, s.TenancyID, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)
	base := server.BaseModelID(server.DefaultBaseModelName)
	create := func(name string) generativeai.CreateModelResponse {
		d := modelDetails(s.TenancyID, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)
		d.DisplayName = &name
		r, err := s.GenAI.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: d})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := create("first")
	gt.waitStarted(t, *first.Id)
	second := create("second")
	// Mark the cluster DELETING behind the API's back, as the racing
	// delete would have.
	c, err := s.Server.Store.GetCluster(ctx, *ft.Id)
	if err != nil {
		t.Fatal(err)
	}
	c.LifecycleState = core.ClusterDeleting
	if err := s.Server.Store.UpdateCluster(ctx, c, ""); err != nil {
		t.Fatal(err)
	}
	close(gt.gate(*first.Id))
	m := waitModelState(t, s.GenAI, *second.Id, generativeai.ModelLifecycleStateFailed)
	if !strings.Contains(deref(m.LifecycleDetails), "deleted") {
		t.Errorf("model on a deleted cluster: %q", deref(m.LifecycleDetails))
	}
	gt.notStarted(t, 200*time.Millisecond)
}
