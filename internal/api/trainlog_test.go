package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loggingTrainer logs one line through the job's logger and succeeds.
type loggingTrainer struct{}

func (loggingTrainer) Train(ctx context.Context, job server.TrainJob, p server.Progress) (server.Artifacts, error) {
	if job.Logger == nil {
		return server.Artifacts{}, nil // no logger: the test sees no line
	}
	job.Logger.InfoContext(ctx, "logging trainer step")
	return server.Artifacts{Metrics: &core.ModelMetrics{Type: core.MetricsTypeChat, FinalAccuracy: 1, FinalLoss: 0.1}}, nil
}

// TestTrainerLogsCarryIDs checks that the trainer logs through the
// server's logger, with the job's ids and the request_id (opc-request-id)
// of the CreateModel that queued the job, the same as the request's own
// log line.
func TestTrainerLogsCarryIDs(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	s := servertest.Start(t, servertest.Options{Trainer: loggingTrainer{}, Logger: log})
	c := s.GenAI
	putDataset(t, s, "data", "train.jsonl")
	ft := createCluster(t, c, s.TenancyID, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)
	base := server.BaseModelID(server.DefaultBaseModelName)
	r, err := c.CreateModel(context.Background(), generativeai.CreateModelRequest{
		CreateModelDetails: modelDetails(s.TenancyID, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)})
	if err != nil {
		t.Fatal(err)
	}
	waitWR(t, c, *r.OpcWorkRequestId)
	var line, request string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "logging trainer step") {
			line = l
		}
		if strings.Contains(l, "msg=request ") && strings.Contains(l, "request_id="+*r.OpcRequestId) {
			request = l
		}
	}
	// The CreateModel's own request log line has the same request_id.
	if !strings.Contains(request, "method=POST") || !strings.Contains(request, "path=/20231130/models") {
		t.Errorf("no request log line for CreateModel with request_id=%s:\n%s", *r.OpcRequestId, buf.String())
	}
	if line == "" {
		t.Fatalf("the trainer's line is not in the server's log:\n%s", buf.String())
	}
	for _, want := range []string{"request_id=" + *r.OpcRequestId, "work_request=" + *r.OpcWorkRequestId, "model=" + *r.Id, "job=", "attempt=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("trainer log line %q lacks %q", line, want)
		}
	}
}
