package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// adminJSON runs `gantry admin args...` against a data directory and
// database and decodes the "data" object it prints.
func adminJSON(t *testing.T, s *servertest.Server, args ...string) map[string]string {
	t.Helper()
	args = append(args, "--data", s.DataDir)
	if s.DatabaseURL != "" {
		args = append(args, "--database-url", s.DatabaseURL)
	}
	out, err := os.CreateTemp(t.TempDir(), "admin-*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stdout := os.Stdout
	os.Stdout = out
	err = runAdmin(context.Background(), args)
	os.Stdout = stdout
	if err != nil {
		t.Fatalf("gantry admin %v: %v", args, err)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Data map[string]string }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("gantry admin %v printed %q: %v", args, b, err)
	}
	return v.Data
}

// TestAdminFlow: users, keys, compartments and tenancies made with
// `gantry admin` next to a running server work at once through the SDK:
// the new user signs requests with the new key, uses the new compartment,
// and a user of a new tenancy sees nothing of the first one's.
func TestAdminFlow(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Postgres: pg, InstallDefaultBaseModel: func(context.Context, string) error { return nil }})
			ctx := context.Background()
			// newKey makes a key pair, adds it to user with gantry admin,
			// and returns an SDK client signing with it.
			newKey := func(tenancy, user string) generativeai.GenerativeAiClient {
				key, err := auth.GenerateKey()
				if err != nil {
					t.Fatal(err)
				}
				pub, err := auth.EncodePublicKeyPEM(&key.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				pubFile := filepath.Join(t.TempDir(), "key.pub")
				if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
					t.Fatal(err)
				}
				k := adminJSON(t, s, "key", "add", "--user", user, "--public-key", pubFile)
				if k["userId"] != user || k["tenancyId"] != tenancy || k["fingerprint"] == "" {
					t.Fatalf("key add printed %v", k)
				}
				p := common.NewRawConfigurationProvider(tenancy, user, "us-chicago-1", k["fingerprint"], string(auth.EncodePrivateKeyPEM(key)), nil)
				return s.NewGenAIClient(t, p)
			}

			u := adminJSON(t, s, "user", "create", "--name", "bob")
			if u["tenancyId"] != s.TenancyID || u["id"] == "" {
				t.Fatalf("user create printed %v", u)
			}
			comp := adminJSON(t, s, "compartment", "create", "--name", "team", "--description", "the team's")
			bob := newKey(s.TenancyID, u["id"])
			cr, err := bob.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
				Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: common.String(comp["id"]), UnitCount: common.Int(1),
				UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere}})
			if err != nil {
				t.Fatalf("the new user creates a cluster in the new compartment: %v", err)
			}
			// The first user sees bob's cluster: same tenancy.
			if _, err := s.GenAI.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: cr.Id}); err != nil {
				t.Errorf("the bootstrap user reads the cluster: %v", err)
			}

			ten := adminJSON(t, s, "tenancy", "create", "--name", "acme")
			if ten["id"] == "" || ten["namespace"] == "" {
				t.Fatalf("tenancy create printed %v", ten)
			}
			eve := adminJSON(t, s, "user", "create", "--name", "eve", "--tenancy", ten["id"])
			ec := newKey(ten["id"], eve["id"])
			if _, err := ec.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: common.String(ten["id"])}); err != nil {
				t.Errorf("the new tenancy's user lists its clusters: %v", err)
			}
			_, err = ec.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: cr.Id})
			if se, ok := common.IsServiceError(err); !ok || se.GetHTTPStatusCode() != 404 {
				t.Errorf("another tenancy's user reads the cluster: %v", err)
			}
			_, err = ec.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: common.String(comp["id"])})
			if se, ok := common.IsServiceError(err); !ok || se.GetHTTPStatusCode() != 404 {
				t.Errorf("another tenancy's user lists the first tenancy's compartment: %v", err)
			}
		})
	}
}
