package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"

	"github.com/gantryml/gantry/internal/api"
	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/finetune"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// startWorker runs a worker-only `gantry serve --api=false` with its
// health endpoints on a free port and the test's job lease and download
// pause; when wantReady, it waits until /readyz answers 200.
func startWorker(t *testing.T, bin, dataDir, dbURL string, wantReady bool) *child {
	t.Helper()
	addr := freeAddr(t)
	args := []string{"serve", "--api=false", "--health-listen", addr, "--data", dataDir,
		"--database-url", dbURL, "--job-lease", "3s"}
	// Each job stops 3 s half-way through its dataset download, so that
	// jobs overlap and one can be killed while it runs.
	env := []string{finetune.PauseEnv + "=download=3s"}
	return runChild(t, bin, args, env, "http://"+addr, func(code int) bool {
		return code == 200 || (!wantReady && code == 503)
	})
}

// TestDistributedWorkers runs one API-only server and two worker-only
// processes on one PostgreSQL schema and one data directory: three models
// on a FINE_TUNING cluster of 2 units all end ACTIVE, never more than two
// train at once, both workers run jobs, and when one worker is killed
// (SIGKILL) while it runs a job, the other takes that job over once its
// lease expires and finishes it. A third worker on a data directory
// without the API server's objects never gets ready and runs nothing.
func TestDistributedWorkers(t *testing.T) {
	dbURL := servertest.NewPostgresDatabase(t)
	if testing.Short() {
		t.Skip("builds gantry and runs four processes")
	}
	bin := buildGantry(t)
	ctx := context.Background()
	dataDir := t.TempDir()
	if err := server.InstallTinyBaseModel(ctx, filepath.Join(dataDir, server.BaseModelsDir, server.DefaultBaseModelName)); err != nil {
		t.Fatal(err)
	}

	apiSrv := startChild(t, bin, dataDir, dbURL, "--workers=false")
	w1 := startWorker(t, bin, dataDir, dbURL, true)
	w2 := startWorker(t, bin, dataDir, dbURL, true)
	// A worker whose DATA/objects is not the API server's.
	stray := startWorker(t, bin, t.TempDir(), dbURL, false)
	workers := map[int]string{w1.cmd.Process.Pid: "w1", w2.cmd.Process.Pid: "w2", stray.cmd.Process.Pid: "stray"}
	procs := map[string]*child{"w1": w1, "w2": w2}
	workerOf := func(owner string) string {
		for pid, name := range workers {
			if strings.Contains(owner, fmt.Sprintf("-%d-", pid)) {
				return name
			}
		}
		return "unknown owner " + owner
	}

	genai, objs, ten := clients(t, dataDir, apiSrv.url)
	ns, err := objs.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		t.Fatalf("GetNamespace: %v", err)
	}
	if _, err := objs.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: ns.Value,
		CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("data"), CompartmentId: &ten}}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	var ds strings.Builder
	for i := range 12 {
		fmt.Fprintf(&ds, `{"prompt": "%d plus 1 is", "completion": " %d"}`+"\n", i, i+1)
	}
	if _, err := objs.PutObject(ctx, objectstorage.PutObjectRequest{NamespaceName: ns.Value, BucketName: common.String("data"),
		ObjectName: common.String("train.jsonl"), ContentLength: common.Int64(int64(ds.Len())), PutObjectBody: io.NopCloser(strings.NewReader(ds.String()))}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	cr, err := genai.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
		Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: &ten, UnitCount: common.Int(2),
		UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere, DisplayName: common.String("ft")}})
	if err != nil {
		t.Fatal(err)
	}
	if wr := waitWorkRequest(t, genai, *cr.OpcWorkRequestId); wr.Status != generativeai.OperationStatusSucceeded {
		t.Fatalf("cluster create: %s", wr.Status)
	}

	base := server.BaseModelID(server.DefaultBaseModelName)
	var modelIDs, wrIDs []string
	for i := range 3 {
		mr, err := genai.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: generativeai.CreateModelDetails{
			CompartmentId: &ten, BaseModelId: &base, DisplayName: common.String(fmt.Sprintf("m%d", i)),
			FineTuneDetails: &generativeai.FineTuneDetails{
				TrainingDataset:      generativeai.ObjectStorageDataset{NamespaceName: ns.Value, BucketName: common.String("data"), ObjectName: common.String("train.jsonl")},
				DedicatedAiClusterId: cr.Id,
				TrainingConfig: generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(1), TrainingBatchSize: common.Int(4),
					EarlyStoppingPatience: common.Int(0), LogModelMetricsIntervalInSteps: common.Int(1)},
			}}})
		if err != nil {
			t.Fatalf("CreateModel %d: %v", i, err)
		}
		modelIDs = append(modelIDs, *mr.Id)
		wrIDs = append(wrIDs, *mr.OpcWorkRequestId)
	}

	// Watch the jobs in the store until every work request ends.
	st, err := server.OpenStore(ctx, dataDir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ranOn := map[string]map[string]bool{} // model: workers seen running its job
	maxRunning := 0
	killed, killedModel := "", ""
	deadline := time.Now().Add(4 * time.Minute)
	for {
		running := 0
		for _, id := range modelIDs {
			j, err := st.GetJob(ctx, api.JobID(api.JobFineTune, id))
			if err != nil {
				t.Fatalf("get job of %s: %v", id, err)
			}
			if j.State != core.JobRunning {
				continue
			}
			w := workerOf(j.LeaseOwner)
			if w == killed && killed != "" {
				continue // the dead worker's lease, not expired yet
			}
			running++
			if ranOn[id] == nil {
				ranOn[id] = map[string]bool{}
			}
			ranOn[id][w] = true
		}
		n, err := st.CountJobs(ctx, *cr.Id, core.JobRunning)
		if err != nil {
			t.Fatal(err)
		}
		maxRunning = max(maxRunning, running, n)
		if n > 2 {
			t.Errorf("%d fine-tune jobs running on a cluster of 2 units", n)
		}
		// Kill the worker of a running job once two run.
		if killed == "" && running == 2 {
			for _, id := range modelIDs {
				for w := range ranOn[id] {
					if killed == "" {
						killed, killedModel = w, id
					}
				}
			}
			t.Logf("killing %s while it runs the job of %s", killed, killedModel)
			procs[killed].kill(t)
		}
		done := 0
		for _, id := range wrIDs {
			r, err := genai.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &id})
			if err != nil {
				t.Fatal(err)
			}
			switch r.Status {
			case generativeai.OperationStatusSucceeded, generativeai.OperationStatusFailed, generativeai.OperationStatusCanceled:
				done++
			}
		}
		if done == len(wrIDs) {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range []*child{w1, w2} {
				b, _ := os.ReadFile(c.logs.Name())
				t.Logf("worker log:\n%s", b)
			}
			t.Fatalf("fine-tune work requests still running after 4 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Logf("jobs ran on %v (at most %d at once); killed %s", ranOn, maxRunning, killed)
	for i, id := range modelIDs {
		m, err := genai.GetModel(ctx, generativeai.GetModelRequest{ModelId: &id})
		if err != nil {
			t.Fatal(err)
		}
		if m.LifecycleState != generativeai.ModelLifecycleStateActive {
			t.Errorf("model %d: %s (%s)", i, m.LifecycleState, deref(m.LifecycleDetails))
		}
	}
	if killed == "" {
		t.Fatalf("never saw two jobs running at once (max %d)", maxRunning)
	}
	if maxRunning != 2 {
		t.Errorf("at most %d jobs ran at once, want 2", maxRunning)
	}
	all := map[string]bool{}
	for _, ws := range ranOn {
		for w := range ws {
			all[w] = true
		}
	}
	if !all["w1"] || !all["w2"] || len(all) != 2 {
		t.Errorf("jobs ran on %v, want w1 and w2 only", all)
	}
	survivor := map[string]string{"w1": "w2", "w2": "w1"}[killed]
	if !ranOn[killedModel][survivor] {
		t.Errorf("the killed worker's job ran on %v, not taken over by %s", ranOn[killedModel], survivor)
	}
	j, err := st.GetJob(ctx, api.JobID(api.JobFineTune, killedModel))
	if err != nil {
		t.Fatal(err)
	}
	if j.Attempt < 2 {
		t.Errorf("the killed worker's job ended at attempt %d, want a second claim", j.Attempt)
	}
	// Each claim that got as far as starting logs a start; the killed
	// worker may die between its claim and that line, so the second claim
	// is checked by Attempt above and the log by its bounds.
	lr, err := genai.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: &wrIDs[indexOf(modelIDs, killedModel)], Limit: common.Int(1000)})
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, l := range lr.Items {
		if strings.Contains(deref(l.Message), "fine-tuning started") {
			starts++
		}
	}
	if starts < 1 || starts > j.Attempt {
		t.Errorf("work request of the killed job logs %d starts, want 1 to %d (its claims)", starts, j.Attempt)
	}

	// One bootstrap: the workers created no tenancy of their own.
	tens, err := st.ListTenancies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tens) != 1 {
		t.Errorf("%d tenancies after one API server and three workers, want 1", len(tens))
	}
	// The stray worker waits, saying why.
	resp, err := http.Get(stray.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not shared") {
		t.Errorf("stray worker /readyz: %d %q, want 503 naming the unshared storage", resp.StatusCode, body)
	}
	// The survivor stops cleanly on SIGTERM.
	if err := procs[survivor].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := procs[survivor].cmd.Wait(); err != nil {
		b, _ := os.ReadFile(procs[survivor].logs.Name())
		t.Errorf("worker after SIGTERM: %v\n%s", err, b)
	}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
