package finetune_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// gantryServe is a child `gantry serve` process.
type gantryServe struct {
	cmd  *exec.Cmd
	url  string
	logs string
}

// startGantry runs `gantry serve` on dataDir with GOMAXPROCS pinned (the
// trainer's thread count, so runs are comparable bit for bit) and waits
// until /readyz answers; env adds to its environment.
func startGantry(t *testing.T, bin, dataDir string, env ...string) *gantryServe {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logs, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", dataDir)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=2"), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs.Close()
	g := &gantryServe{cmd: cmd, url: "http://" + addr, logs: logs.Name()}
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			_ = g.cmd.Process.Kill()
			_ = g.cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(g.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(g.logs)
			t.Fatalf("gantry serve did not become ready: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gantryServe) clients(t *testing.T, dataDir string) (generativeai.GenerativeAiClient, objectstorage.ObjectStorageClient, string) {
	t.Helper()
	p, err := auth.ConfigProvider(auth.ConfigPath(dataDir), "DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	ten, err := p.TenancyOCID()
	if err != nil {
		t.Fatal(err)
	}
	s := &servertest.Server{BaseURL: g.url}
	return s.NewGenAIClient(t, p), s.NewObjectStorageClient(t, p), ten
}

// TestResumeAfterSIGKILL trains a model to the end, then trains a second
// one with the same data and config and kills the server (SIGKILL) in the
// middle; the restarted server resumes the job from its checkpoint and the
// model ends ACTIVE with the same metrics, the same metric series (no
// step lost or logged twice) and the same adapter bytes.
func TestResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gantry and trains twice")
	}
	bin := filepath.Join(t.TempDir(), "gantry")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/gantryml/gantry/cmd/gantry").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	installBaseModels(t, dataDir)
	ctx := context.Background()

	g := startGantry(t, bin, dataDir)
	c, objs, ten := g.clients(t, dataDir)
	ns, err := objs.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		t.Fatalf("GetNamespace: %v", err)
	}
	upload(t, objs, *ns.Value, ten, "train.jsonl", dataset(20))
	cluster := createCluster(t, c, ten, 1)
	// 20 examples: 16 train, batch 1: 16 steps an epoch, 160 in all.
	cfg := generativeai.LoraTrainingConfig{TotalTrainingEpochs: common.Int(10), TrainingBatchSize: common.Int(1),
		LearningRate: common.Float64(0.005), LogModelMetricsIntervalInSteps: common.Int(5), EarlyStoppingPatience: common.Int(0)}

	refID, refWR := createModel(t, c, ten, chatBase, cluster, *ns.Value, "train.jsonl", "uninterrupted", cfg)
	if wr := waitWR(t, c, refWR, 3*time.Minute); wr.Status != generativeai.OperationStatusSucceeded {
		t.Fatalf("uninterrupted run: %s (%s)", wr.Status, deref(getModel(t, c, refID).LifecycleDetails))
	}
	ref := getModel(t, c, refID)

	id, wrID := createModel(t, c, ten, chatBase, cluster, *ns.Value, "train.jsonl", "killed", cfg)
	deadline := time.Now().Add(2 * time.Minute)
	var killedAt float64
	for {
		r, err := c.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &wrID})
		if err != nil {
			t.Fatal(err)
		}
		_, cerr := os.Stat(filepath.Join(workDir(dataDir, id), "checkpoints", "LATEST"))
		if pct := deref(r.PercentComplete); pct >= 20 && cerr == nil {
			if r.Status != generativeai.OperationStatusInProgress || pct > 90 {
				t.Fatalf("training went too fast to be interrupted: %s at %v%%", r.Status, pct)
			}
			killedAt = float64(pct)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("work request %s at %v%%, never reached 20%% with a checkpoint", r.Status, deref(r.PercentComplete))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = g.cmd.Wait()
	killed := time.Now()
	t.Logf("killed the server at %.1f%%", killedAt)

	g = startGantry(t, bin, dataDir)
	c, _, _ = g.clients(t, dataDir)
	// The new server finds the dead one's lock file unlocked and takes
	// its job over at once, without waiting for its 30 s lease.
	restarted := time.Now()
	wr := waitWR(t, c, wrID, 3*time.Minute)
	t.Logf("resumed job ended %v after the restart", time.Since(restarted).Round(time.Millisecond))
	m := getModel(t, c, id)
	if wr.Status != generativeai.OperationStatusSucceeded || m.LifecycleState != generativeai.ModelLifecycleStateActive {
		b, _ := os.ReadFile(g.logs)
		t.Fatalf("after restart: work request %s, model %s (%s)\n%s", wr.Status, m.LifecycleState, deref(m.LifecycleDetails), b)
	}
	refMetrics, _ := ref.ModelMetrics.(generativeai.ChatModelMetrics)
	gotMetrics, _ := m.ModelMetrics.(generativeai.ChatModelMetrics)
	if refMetrics.FinalLoss == nil || gotMetrics.FinalLoss == nil ||
		*gotMetrics.FinalLoss != *refMetrics.FinalLoss || deref(gotMetrics.FinalAccuracy) != deref(refMetrics.FinalAccuracy) {
		t.Errorf("metrics after resume %+v, uninterrupted %+v", gotMetrics, refMetrics)
	}
	refPts, gotPts := metricPoints(wrLogs(t, c, refWR)), metricPoints(wrLogs(t, c, wrID))
	checkSeries(t, gotPts, 160, deref(gotMetrics.FinalLoss))
	if a, b := metricsJSON(t, refPts), metricsJSON(t, gotPts); a != b {
		t.Errorf("metric series after resume differs from the uninterrupted run's:\n%s\n%s", b, a)
	}
	cl := newClient(t, dataDir, g.url)
	refFiles, gotFiles := adapterBytes(t, cl, refID), adapterBytes(t, cl, id)
	if len(gotFiles) == 0 || len(gotFiles) != len(refFiles) {
		t.Errorf("artifacts after resume %d files, uninterrupted %d", len(gotFiles), len(refFiles))
	}
	for name, b := range refFiles {
		if !bytes.Equal(gotFiles[name], b) {
			t.Errorf("artifact %s differs from the uninterrupted run's", name)
		}
	}
	logs := wrLogs(t, c, wrID)
	if n := strings.Count(strings.Join(logs, "\n"), "fine-tuning started"); n < 2 {
		t.Errorf("work request logs show %d attempts, want 2: %q", n, logs)
	}
	// The second attempt began before the dead server's 30 s lease ran
	// out: the new server proved it dead by its unlocked lock file.
	lr2, err := c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: &wrID, Limit: common.Int(1000),
		SortOrder: generativeai.ListWorkRequestLogsSortOrderDesc})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lr2.Items {
		if strings.Contains(deref(l.Message), "fine-tuning started") {
			if l.Timestamp == nil || !l.Timestamp.Time.Before(killed.Add(25*time.Second)) {
				t.Errorf("the resumed attempt started at %v, killed at %v: the dead server's lease was waited for", l.Timestamp, killed)
			}
			break
		}
	}
	checkNoWorkDir(t, dataDir, id)
	lr, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, DisplayName: common.String("killed")})
	if err != nil || len(lr.Items) != 1 {
		t.Errorf("ListModels killed: %v, %d models; want 1", err, len(lr.Items))
	}
}
