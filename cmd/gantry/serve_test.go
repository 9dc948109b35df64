package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/server"
)

func TestAdminCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := runAdmin(ctx, []string{"user", "create", "--name", "early", "--data", dir}); err == nil {
		t.Error("admin on a data directory without a tenancy succeeded")
	}
	s, err := server.Open(ctx, server.Config{DataDir: dir, InstallDefaultBaseModel: func(context.Context, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	stdout := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = stdout }()

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
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"user", "create", "--name", "zed", "--data", dir}, true},
		{[]string{"user", "create", "--data", dir}, false},
		{[]string{"user", "delete", "--name", "x", "--data", dir}, false},
		{[]string{"compartment", "create", "--name", "team", "--description", "d", "--data", dir}, true},
		{[]string{"tenancy", "create", "--name", "second", "--data", dir}, true},
		{[]string{"user", "create", "--name", "ambiguous", "--data", dir}, false},
		{[]string{"key", "add", "--user", "ocid1.user.oc1..none", "--public-key", pubFile, "--data", dir}, false},
		{[]string{"key", "add", "--user", "x", "--data", dir}, false},
	} {
		err := runAdmin(ctx, tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("gantry admin %v: err %v, want ok=%v", tc.args, err, tc.ok)
		}
	}

	st, err := server.OpenStore(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := auth.ReadConfig(auth.ConfigPath(dir), "DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	users, err := st.ListUsers(ctx, p.Tenancy)
	if err != nil {
		t.Fatal(err)
	}
	var zed string
	for _, u := range users {
		if u.Name == "zed" {
			zed = u.ID
		}
	}
	if zed == "" {
		t.Fatalf("user zed not in the store: %d users", len(users))
	}
	if err := runAdmin(ctx, []string{"key", "add", "--user", zed, "--public-key", pubFile, "--data", dir}); err != nil {
		t.Fatalf("key add: %v", err)
	}
	fp, _ := auth.Fingerprint(&key.PublicKey)
	if _, err := st.GetAPIKey(ctx, p.Tenancy, zed, fp); err != nil {
		t.Errorf("added key not found by its fingerprint: %v", err)
	}
	comps, err := st.ListCompartments(ctx, p.Tenancy)
	if err != nil || len(comps) != 1 || comps[0].Name != "team" {
		t.Errorf("compartments: %v %d", err, len(comps))
	}
}

// TestServeFlagErrors: bad flag values are errors naming the flag, found
// before anything is opened.
func TestServeFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-jobs", "-1"}, "--max-jobs"},
		{[]string{"--job-lease", "10ms"}, "--job-lease"},
		{[]string{"--job-retention", "1m"}, "--job-retention"},
	} {
		err := runServe(t.Context(), append(c.args, "--data", t.TempDir()))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}
