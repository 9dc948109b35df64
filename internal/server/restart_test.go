package server_test

import (
	"context"

	"io"
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
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// buildGantry builds the gantry binary once per test binary run.
func buildGantry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gantry")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/gantryml/gantry/cmd/gantry")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// child is a `gantry serve` process.
type child struct {
	cmd  *exec.Cmd
	url  string
	logs *os.File
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startChild runs `gantry serve` and waits until /readyz answers.
func startChild(t *testing.T, bin, dataDir, dbURL string, extra ...string) *child {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"serve", "--listen", addr, "--data", dataDir}, extra...)
	if dbURL != "" {
		args = append(args, "--database-url", dbURL)
	}
	return runChild(t, bin, args, nil, "http://"+addr, func(code int) bool { return code == 200 })
}

// runChild starts bin with args (and env added to the test's environment),
// its output in a log file, kills it when the test ends, and waits until
// url's /readyz answers a status ready accepts.
func runChild(t *testing.T, bin string, args, env []string, url string, ready func(status int) bool) *child {
	t.Helper()
	logs, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, url: url, logs: logs}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(c.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if ready(resp.StatusCode) {
				return c
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logs.Name())
			t.Fatalf("gantry %s did not become ready: %v\n%s", strings.Join(args, " "), err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and reaps the process.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

func clients(t *testing.T, dataDir, url string) (generativeai.GenerativeAiClient, objectstorage.ObjectStorageClient, string) {
	t.Helper()
	p, err := auth.ConfigProvider(auth.ConfigPath(dataDir), "DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	ten, err := p.TenancyOCID()
	if err != nil {
		t.Fatal(err)
	}
	s := &servertest.Server{BaseURL: url}
	return s.NewGenAIClient(t, p), s.NewObjectStorageClient(t, p), ten
}

func waitWorkRequest(t *testing.T, c generativeai.GenerativeAiClient, id string) generativeai.WorkRequest {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.GetWorkRequest(context.Background(), generativeai.GetWorkRequestRequest{WorkRequestId: &id})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == generativeai.OperationStatusSucceeded || r.Status == generativeai.OperationStatusFailed || r.Status == generativeai.OperationStatusCanceled {
			return r.WorkRequest
		}
		if time.Now().After(deadline) {
			t.Fatalf("work request %s still %s", id, r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRestartAfterSIGKILL creates resources, kills the server with
// SIGKILL, queues jobs on an API-only server and kills that too; the next
// server on the same data has everything and runs the queued jobs.
func TestRestartAfterSIGKILL(t *testing.T) {
	bin := buildGantry(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dbURL := ""
			if backend == "postgres" {
				dbURL = servertest.NewPostgresDatabase(t)
			}
			restartAfterKill(t, bin, t.TempDir(), dbURL)
		})
	}
}

func restartAfterKill(t *testing.T, bin, dataDir, dbURL string) {
	ctx := context.Background()

	// 1: a cluster and a dataset, then SIGKILL.
	c1 := startChild(t, bin, dataDir, dbURL)
	genai, objs, ten := clients(t, dataDir, c1.url)
	ns, err := objs.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		t.Fatalf("GetNamespace: %v", err)
	}
	if _, err := objs.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: ns.Value,
		CreateBucketDetails: objectstorage.CreateBucketDetails{Name: common.String("data"), CompartmentId: &ten}}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	data := `{"prompt": "one", "completion": "1"}` + "\n"
	if _, err := objs.PutObject(ctx, objectstorage.PutObjectRequest{NamespaceName: ns.Value, BucketName: common.String("data"),
		ObjectName: common.String("train.jsonl"), ContentLength: common.Int64(int64(len(data))), PutObjectBody: io.NopCloser(strings.NewReader(data))}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	cr, err := genai.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
		Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: &ten, UnitCount: common.Int(1),
		UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere, DisplayName: common.String("first")}})
	if err != nil {
		t.Fatal(err)
	}
	waitWorkRequest(t, genai, *cr.OpcWorkRequestId)
	c1.kill(t)

	// 2: an API-only server queues work, then SIGKILL.
	c2 := startChild(t, bin, dataDir, dbURL, "--workers=false")
	genai, _, _ = clients(t, dataDir, c2.url)
	base := server.BaseModelID(server.DefaultBaseModelName)
	mr, err := genai.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: generativeai.CreateModelDetails{
		CompartmentId: &ten, BaseModelId: &base, DisplayName: common.String("queued"),
		FineTuneDetails: &generativeai.FineTuneDetails{
			TrainingDataset:      generativeai.ObjectStorageDataset{NamespaceName: ns.Value, BucketName: common.String("data"), ObjectName: common.String("train.jsonl")},
			DedicatedAiClusterId: cr.Id,
		}}})
	if err != nil {
		t.Fatalf("CreateModel: %v", err)
	}
	cr2, err := genai.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
		Type: generativeai.DedicatedAiClusterTypeHosting, CompartmentId: &ten, UnitCount: common.Int(1),
		UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere, DisplayName: common.String("second")}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if wr, err := genai.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: mr.OpcWorkRequestId}); err != nil || wr.Status != generativeai.OperationStatusAccepted {
		t.Fatalf("a job ran on a --workers=false server: %v %s", err, wr.Status)
	}
	c2.kill(t)

	// 3: everything is there and the queued jobs run.
	c3 := startChild(t, bin, dataDir, dbURL)
	genai, objs, _ = clients(t, dataDir, c3.url)
	if wr := waitWorkRequest(t, genai, *cr2.OpcWorkRequestId); wr.Status != generativeai.OperationStatusSucceeded {
		t.Errorf("queued cluster create after restart: %s", wr.Status)
	}
	// The queued fine-tune ran: it ended (how depends on the trainer
	// wired into gantry serve and the one-line dataset), and the model's
	// state agrees with its work request.
	wr := waitWorkRequest(t, genai, *mr.OpcWorkRequestId)
	m, err := genai.GetModel(ctx, generativeai.GetModelRequest{ModelId: mr.Id})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case wr.Status == generativeai.OperationStatusSucceeded && m.LifecycleState == generativeai.ModelLifecycleStateActive:
	case wr.Status == generativeai.OperationStatusFailed && m.LifecycleState == generativeai.ModelLifecycleStateFailed:
	default:
		t.Errorf("queued fine-tune after restart: work request %s, model %s (%s)", wr.Status, m.LifecycleState, deref(m.LifecycleDetails))
	}
	t.Logf("queued fine-tune after restart: %s, %q", m.LifecycleState, deref(m.LifecycleDetails))
	for _, id := range []*string{cr.Id, cr2.Id} {
		g, err := genai.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: id})
		if err != nil || g.LifecycleState != generativeai.DedicatedAiClusterLifecycleStateActive {
			t.Errorf("cluster %s after restart: %v %s", *id, err, g.LifecycleState)
		}
	}
	o, err := objs.GetObject(ctx, objectstorage.GetObjectRequest{NamespaceName: ns.Value, BucketName: common.String("data"), ObjectName: common.String("train.jsonl")})
	if err != nil {
		t.Fatalf("GetObject after restart: %v", err)
	}
	got, _ := io.ReadAll(o.Content)
	o.Content.Close()
	if string(got) != data {
		t.Errorf("object after restart: %q", got)
	}
	// SIGTERM stops it cleanly.
	if err := c3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c3.cmd.Wait(); err != nil {
		b, _ := os.ReadFile(c3.logs.Name())
		t.Errorf("gantry serve after SIGTERM: %v\n%s", err, b)
	}

}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
