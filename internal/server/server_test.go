package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestOperations(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	if resp, body := get(t, s.BaseURL+"/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, s.BaseURL+"/readyz", nil); resp.StatusCode != 200 {
		t.Errorf("readyz: %d %q", resp.StatusCode, body)
	}
	// Request ids: the client's is echoed, else one is made.
	resp, _ := get(t, s.BaseURL+"/20231130/models", map[string]string{"opc-request-id": "abc-123"})
	if resp.StatusCode != 401 || resp.Header.Get("opc-request-id") != "abc-123" {
		t.Errorf("unsigned request: %d, request id %q", resp.StatusCode, resp.Header.Get("opc-request-id"))
	}
	resp, _ = get(t, s.BaseURL+"/20231130/models", map[string]string{"opc-request-id": strings.Repeat("x", 300)})
	if id := resp.Header.Get("opc-request-id"); id == "" || len(id) > 256 {
		t.Errorf("invalid client request id answered as %q", id)
	}
	ctx := context.Background()
	if _, err := s.GenAI.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &s.TenancyID}); err != nil {
		t.Fatal(err)
	}
	bogus := "ocid1.generativeaimodel.oc1..none"
	_, _ = s.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &bogus})

	resp, body := get(t, s.BaseURL+"/metrics", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`gantry_http_requests_total{operation="ListModels",code="200"} 1`,
		`gantry_http_requests_total{operation="GetModel",code="404"} 1`,
		`gantry_http_requests_total{operation="Unauthenticated",code="401"} 2`,
		`gantry_http_request_duration_seconds_count{operation="ListModels"} 1`,
		`gantry_http_request_duration_seconds_bucket{operation="ListModels",le="+Inf"} 1`,
		`gantry_jobs{state="queued"} 0`,
		"# TYPE gantry_http_request_duration_seconds histogram",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestAdmin(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	a := &server.Admin{Store: s.Server.Store}
	u, err := a.CreateUser(ctx, "", "carol")
	if err != nil || u.TenancyID != s.TenancyID {
		t.Fatalf("CreateUser in the only tenancy: %v %+v", err, u)
	}
	c, err := a.CreateCompartment(ctx, "", "", "team", "a team")
	if err != nil || c.ParentID != s.TenancyID {
		t.Fatalf("CreateCompartment: %v", err)
	}
	if _, err := a.CreateCompartment(ctx, "", c.ID, "sub", ""); err != nil {
		t.Errorf("nested compartment: %v", err)
	}
	if _, err := a.AddKey(ctx, u.ID, []byte("not a key")); err == nil {
		t.Error("AddKey accepted garbage")
	}
	if _, err := a.CreateUser(ctx, "", ""); err == nil {
		t.Error("CreateUser accepted an empty name")
	}
	if _, err := a.CreateTenancy(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateUser(ctx, "", "dave"); err != server.ErrAmbiguousTenancy {
		t.Errorf("CreateUser with two tenancies and none named: %v", err)
	}
	// The new compartment is usable through the API.
	l, err := s.GenAI.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &c.ID})
	if err != nil || len(l.Items) == 0 {
		t.Errorf("ListModels in an admin-made compartment: %v", err)
	}
}

// TestInternalError: a store failure is a 500 InternalServerError naming
// the request id, and /readyz reports the store unavailable.
func TestInternalError(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	if err := s.Server.Store.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := s.Do(t, "GET", "/20231130/dedicatedAiClusters?compartmentId="+s.TenancyID, nil, nil)
	// The signature check itself reads the key from the store, so either
	// layer may be the one that fails; both answer 500.
	if resp.StatusCode != 500 || !strings.Contains(string(body), "InternalServerError") {
		t.Errorf("request with the store closed: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, s.BaseURL+"/readyz", nil); resp.StatusCode != 503 {
		t.Errorf("readyz with the store closed: %d", resp.StatusCode)
	}
}

// TestCatalogRestart: base model OCIDs survive restarts, and a base model
// whose directory was removed is DELETED on the next start.
func TestCatalogRestart(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	dir := s.DataDir
	extra := filepath.Join(dir, server.BaseModelsDir, "extra")
	if err := os.MkdirAll(extra, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "config.json"), []byte(`{"model_type":"llama","num_hidden_layers":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s = servertest.Start(t, servertest.Options{DataDir: dir})
	ctx := context.Background()
	id := server.BaseModelID("extra")
	if g, err := s.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &id}); err != nil || g.LifecycleState != generativeai.ModelLifecycleStateActive {
		t.Fatalf("added base model after restart: %v", err)
	}
	if err := os.RemoveAll(extra); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s = servertest.Start(t, servertest.Options{DataDir: dir})
	g, err := s.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &id})
	if err != nil || g.LifecycleState != generativeai.ModelLifecycleStateDeleted {
		t.Errorf("removed base model after restart: %v %s", err, g.LifecycleState)
	}
	tiny := server.BaseModelID(server.DefaultBaseModelName)
	if g, err := s.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &tiny}); err != nil || g.LifecycleState != generativeai.ModelLifecycleStateActive {
		t.Errorf("default base model after restarts: %v", err)
	}
}
