package client_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// jsDir is tools/js in the repository.
func jsDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "tools", "js")
}

// TestTypeScriptSDKSmoke runs tools/js/smoke.mjs, the OCI TypeScript SDK
// from npm, against a real server: sign in, upload a dataset, create a
// cluster and a model, read them back.
func TestTypeScriptSDKSmoke(t *testing.T) {
	dir := jsDir(t)
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not on PATH"
	default:
		for _, pkg := range []string{"oci-common", "oci-objectstorage", "oci-generativeai"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
				missing = "npm package " + pkg + " is not installed in tools/js/node_modules (run npm ci in tools/js)"
			}
		}
	}
	if missing != "" {
		if os.Getenv("GANTRY_REQUIRE_REFERENCES") == "1" {
			t.Fatalf("TypeScript smoke test: %s", missing)
		}
		t.Skipf("TypeScript smoke test: %s", missing)
	}
	s := servertest.Start(t, servertest.Options{})
	cmd := exec.Command(node, filepath.Join(dir, "smoke.mjs"), s.BaseURL, auth.ConfigPath(s.DataDir))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("smoke.mjs: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var res struct {
		Namespace string
		Dataset   struct{ Bucket, Object string }
		Cluster   struct{ ID, LifecycleState string }
		Model     struct {
			ID, LifecycleState string
			TrainingConfig     map[string]any
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("smoke.mjs output %q: %v", out, err)
	}
	if res.Namespace != s.Namespace || res.Cluster.LifecycleState != "ACTIVE" || res.Model.ID == "" {
		t.Fatalf("smoke result %+v", res)
	}
	// What the TypeScript client created is there for the Go side too.
	m, err := s.Server.Store.GetModel(t.Context(), res.Model.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.DisplayName != "smoke-model" || m.FineTuneDetails == nil || m.FineTuneDetails.Dataset.Object != "train/data.jsonl" || m.FineTuneDetails.TrainingConfig.LoraR != 4 {
		t.Errorf("stored model %+v", m)
	}
	if _, err := s.Server.Objects.HeadObject(t.Context(), s.Namespace, res.Dataset.Bucket, res.Dataset.Object); err != nil {
		t.Errorf("dataset uploaded by the TypeScript SDK: %v", err)
	}
}
