// Package storetest is the test suite every store.Store driver must pass:
// the semantics promised by package store's doc comments, its error
// classes, list filters and paging, and the job queue under concurrent
// claimers. Drivers call Run from their own tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// Run runs the suite; open returns a fresh, empty store for one subtest
// and arranges (with t.Cleanup) for it to be closed.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Identities", testIdentities},
		{"APIKeys", testAPIKeys},
		{"ModelCRUD", testModelCRUD},
		{"ModelConflict", testModelConflict},
		{"ModelUpdateIfMatch", testModelUpdateIfMatch},
		{"UpsertBaseModel", testUpsertBaseModel},
		{"ListModelsFilters", testListModelsFilters},
		{"ListSortAndPaging", testListSortAndPaging},
		{"ListLimits", testListLimits},
		{"Clusters", testClusters},
		{"WorkRequests", testWorkRequests},
		{"WorkRequestLogsAndErrors", testWorkRequestLogsAndErrors},
		{"RetryTokens", testRetryTokens},
		{"InTx", testInTx},
		{"JobLifecycle", testJobLifecycle},
		{"JobFIFOAndConcurrency", testJobFIFOAndConcurrency},
		{"JobLeaseExpiry", testJobLeaseExpiry},
		{"JobCancel", testJobCancel},
		{"JobRelease", testJobRelease},
		{"JobConcurrentClaims", testJobConcurrentClaims},
		{"ListSortKeys", testListSortKeys},
		{"JobExpireLeases", testJobExpireLeases},
		{"ClaimBootstrap", testClaimBootstrap},
		{"PurgeRetryTokens", testPurgeRetryTokens},
		{"PurgeJobs", testPurgeJobs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// must fails the test on err.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr checks that err is (wraps) target.
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// seedTenancy creates a tenancy with a user and returns them.
func seedTenancy(t *testing.T, st store.Store, n int) (*core.Tenancy, *core.User) {
	t.Helper()
	ten := &core.Tenancy{ID: fmt.Sprintf("ocid1.tenancy.oc1..t%d", n), Name: fmt.Sprintf("t%d", n), Namespace: fmt.Sprintf("ns%d", n)}
	must(t, st.CreateTenancy(ctx(t), ten), "create tenancy")
	u := &core.User{ID: fmt.Sprintf("ocid1.user.oc1..u%d", n), TenancyID: ten.ID, Name: "admin"}
	must(t, st.CreateUser(ctx(t), u), "create user")
	return ten, u
}

func testIdentities(t *testing.T, st store.Store) {
	ten, u := seedTenancy(t, st, 1)
	if ten.TimeCreated.IsZero() || u.TimeCreated.IsZero() {
		t.Fatal("TimeCreated not set on create")
	}
	got, err := st.GetTenancy(ctx(t), ten.ID)
	must(t, err, "get tenancy")
	if !reflect.DeepEqual(got, ten) {
		t.Fatalf("get tenancy: got %+v, want %+v", got, ten)
	}
	got, err = st.GetTenancyByNamespace(ctx(t), "ns1")
	must(t, err, "get tenancy by namespace")
	if got.ID != ten.ID {
		t.Fatalf("by namespace: got %s", got.ID)
	}
	_, err = st.GetTenancyByNamespace(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "unknown namespace")
	_, err = st.GetTenancy(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "unknown tenancy")
	wantErr(t, st.CreateTenancy(ctx(t), &core.Tenancy{ID: ten.ID, Namespace: "other"}), store.ErrConflict, "duplicate tenancy ID")
	wantErr(t, st.CreateTenancy(ctx(t), &core.Tenancy{ID: "other", Namespace: "ns1"}), store.ErrConflict, "duplicate namespace")
	if err := st.CreateTenancy(ctx(t), &core.Tenancy{ID: "x"}); err == nil {
		t.Fatal("tenancy without namespace accepted")
	}
	seedTenancy(t, st, 2)
	all, err := st.ListTenancies(ctx(t))
	must(t, err, "list tenancies")
	if len(all) != 2 || all[0].ID != ten.ID {
		t.Fatalf("list tenancies: got %d, first %v", len(all), all)
	}

	gu, err := st.GetUser(ctx(t), u.ID)
	must(t, err, "get user")
	if !reflect.DeepEqual(gu, u) {
		t.Fatalf("get user: got %+v, want %+v", gu, u)
	}
	_, err = st.GetUser(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "unknown user")
	wantErr(t, st.CreateUser(ctx(t), &core.User{ID: "u-x", TenancyID: "nope"}), store.ErrNotFound, "user of unknown tenancy")
	wantErr(t, st.CreateUser(ctx(t), &core.User{ID: u.ID, TenancyID: ten.ID}), store.ErrConflict, "duplicate user")
	must(t, st.CreateUser(ctx(t), &core.User{ID: "u-second", TenancyID: ten.ID, Name: "second"}), "second user")
	users, err := st.ListUsers(ctx(t), ten.ID)
	must(t, err, "list users")
	if len(users) != 2 || users[0].ID != u.ID || users[1].ID != "u-second" {
		t.Fatalf("list users: %+v", users)
	}

	c := &core.Compartment{ID: "ocid1.compartment.oc1..c1", TenancyID: ten.ID, ParentID: ten.ID, Name: "dev", LifecycleState: "ACTIVE"}
	must(t, st.CreateCompartment(ctx(t), c), "create compartment")
	gc, err := st.GetCompartment(ctx(t), c.ID)
	must(t, err, "get compartment")
	if !reflect.DeepEqual(gc, c) {
		t.Fatalf("get compartment: got %+v, want %+v", gc, c)
	}
	_, err = st.GetCompartment(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "unknown compartment")
	wantErr(t, st.CreateCompartment(ctx(t), c), store.ErrConflict, "duplicate compartment")
	wantErr(t, st.CreateCompartment(ctx(t), &core.Compartment{ID: "c-x", TenancyID: "nope"}), store.ErrNotFound, "compartment of unknown tenancy")
	cs, err := st.ListCompartments(ctx(t), ten.ID)
	must(t, err, "list compartments")
	if len(cs) != 1 {
		t.Fatalf("list compartments: %d", len(cs))
	}
	cs, err = st.ListCompartments(ctx(t), "ocid1.tenancy.oc1..t2")
	must(t, err, "list compartments of t2")
	if len(cs) != 0 {
		t.Fatalf("compartments of another tenancy listed: %d", len(cs))
	}
}

func testAPIKeys(t *testing.T, st store.Store) {
	ten, u := seedTenancy(t, st, 1)
	ten2, _ := seedTenancy(t, st, 2)
	k := &core.APIKey{TenancyID: ten.ID, UserID: u.ID, Fingerprint: "aa:bb", PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\n..."}
	must(t, st.AddAPIKey(ctx(t), k), "add key")
	got, err := st.GetAPIKey(ctx(t), ten.ID, u.ID, "aa:bb")
	must(t, err, "get key")
	if !reflect.DeepEqual(got, k) {
		t.Fatalf("get key: got %+v, want %+v", got, k)
	}
	for _, c := range []struct{ ten, user, fp string }{
		{ten.ID, u.ID, "cc:dd"}, {ten2.ID, u.ID, "aa:bb"}, {ten.ID, "nope", "aa:bb"},
	} {
		_, err := st.GetAPIKey(ctx(t), c.ten, c.user, c.fp)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("get key %v", c))
	}
	wantErr(t, st.AddAPIKey(ctx(t), k), store.ErrConflict, "duplicate key")
	bad := *k
	bad.UserID, bad.Fingerprint = "nope", "ee:ff"
	wantErr(t, st.AddAPIKey(ctx(t), &bad), store.ErrNotFound, "key of unknown user")
	bad = *k
	bad.TenancyID, bad.Fingerprint = ten2.ID, "ee:ff"
	wantErr(t, st.AddAPIKey(ctx(t), &bad), store.ErrNotFound, "key of a user in another tenancy")
	if err := st.AddAPIKey(ctx(t), &core.APIKey{TenancyID: ten.ID, UserID: u.ID, Fingerprint: "x"}); err == nil {
		t.Fatal("key without PEM accepted")
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

// customModel returns a custom model with every kind of field set.
func customModel(id, tenancy, compartment, name, version string) *core.Model {
	dep := t0.Add(90 * 24 * time.Hour)
	return &core.Model{
		ID: id, TenancyID: tenancy, CompartmentID: compartment,
		DisplayName: name, Description: "a model", Vendor: "gantry", Version: version,
		Type: core.ModelTypeCustom, Capabilities: []string{core.CapabilityTextGeneration, core.CapabilityChat},
		LifecycleState: core.ModelCreating, BaseModelID: "base-1",
		FineTuneDetails: &core.FineTuneDetails{
			DedicatedAiClusterID: "cluster-1",
			Dataset:              core.Dataset{Namespace: "ns1", Bucket: "b", Object: "train.jsonl"},
			TrainingConfig: core.TrainingConfig{Type: core.TrainingConfigLoRA, TotalTrainingEpochs: 3, LearningRate: 0.0002,
				TrainingBatchSize: 8, EarlyStoppingPatience: 15, EarlyStoppingThreshold: 0.0001, LogModelMetricsIntervalInSteps: 10,
				LoraR: 8, LoraAlpha: 8, LoraDropout: 0.1},
		},
		Metrics:        &core.ModelMetrics{Type: core.MetricsTypeChat, FinalAccuracy: 0.5, FinalLoss: 1.25},
		TimeCreated:    t0,
		TimeDeprecated: &dep,
		FreeformTags:   map[string]string{"team": "ml"},
		DefinedTags:    map[string]map[string]any{"ops": {"cost": "a", "n": 2.0}},
		SystemTags:     map[string]map[string]any{},
	}
}

func baseModel(id, name string) *core.Model {
	return &core.Model{ID: id, DisplayName: name, Vendor: "meta", Version: "1", Type: core.ModelTypeBase,
		Capabilities:   []string{core.CapabilityFineTune, core.CapabilityTextGeneration, core.CapabilityChat},
		LifecycleState: core.ModelActive, IsLongTermSupported: true}
}

func testModelCRUD(t *testing.T, st store.Store) {
	m := customModel("m1", "ten1", "comp1", "my-model", "1")
	must(t, st.InsertModel(ctx(t), m), "insert")
	if m.ETag == "" || m.TimeUpdated.IsZero() || !m.TimeCreated.Equal(t0) {
		t.Fatalf("insert did not set ETag/TimeUpdated or changed TimeCreated: %+v", m)
	}
	got, err := st.GetModel(ctx(t), "m1")
	must(t, err, "get")
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	_, err = st.GetModel(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "get unknown model")
	wantErr(t, st.InsertModel(ctx(t), customModel("m1", "ten1", "comp1", "other", "1")), store.ErrConflict, "duplicate ID")
	if err := st.InsertModel(ctx(t), &core.Model{}); err == nil {
		t.Fatal("model without ID accepted")
	}

	// A zero TimeCreated is set by the store.
	m2 := customModel("m2", "ten1", "comp1", "other", "1")
	m2.TimeCreated = time.Time{}
	before := time.Now().Add(-time.Second)
	must(t, st.InsertModel(ctx(t), m2), "insert m2")
	if m2.TimeCreated.Before(before) {
		t.Fatalf("zero TimeCreated set to %v", m2.TimeCreated)
	}

	// Update writes every field and a new ETag.
	old := m.ETag
	m.Description = "changed"
	m.LifecycleState = core.ModelActive
	m.FreeformTags = map[string]string{"x": "y"}
	must(t, st.UpdateModel(ctx(t), m, ""), "update")
	if m.ETag == old {
		t.Fatal("update kept the ETag")
	}
	got, err = st.GetModel(ctx(t), "m1")
	must(t, err, "get after update")
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("after update:\n got %+v\nwant %+v", got, m)
	}
	wantErr(t, st.UpdateModel(ctx(t), customModel("nope", "ten1", "c", "n", "1"), ""), store.ErrNotFound, "update unknown model")
	wantErr(t, st.UpdateModel(ctx(t), customModel("nope", "ten1", "c", "n", "1"), "etag"), store.ErrNotFound, "update unknown model with if-match")
}

func testModelConflict(t *testing.T, st store.Store) {
	a := customModel("a", "ten1", "comp1", "name", "1")
	must(t, st.InsertModel(ctx(t), a), "insert a")
	// Same name, other version: fine. Same pair in another tenancy or compartment: see below.
	must(t, st.InsertModel(ctx(t), customModel("b", "ten1", "comp1", "name", "2")), "new version")
	must(t, st.InsertModel(ctx(t), customModel("c", "ten2", "comp9", "name", "1")), "same pair, other tenancy")
	wantErr(t, st.InsertModel(ctx(t), customModel("d", "ten1", "comp2", "name", "1")), store.ErrConflict, "same pair, other compartment")
	wantErr(t, st.InsertModel(ctx(t), customModel("d", "ten1", "comp1", "name", "1")), store.ErrConflict, "same pair")
	// Updating b onto a's pair conflicts.
	b, err := st.GetModel(ctx(t), "b")
	must(t, err, "get b")
	b.Version = "1"
	wantErr(t, st.UpdateModel(ctx(t), b, ""), store.ErrConflict, "update onto an existing pair")
	// A DELETED model frees its pair.
	a.LifecycleState = core.ModelDeleted
	must(t, st.UpdateModel(ctx(t), a, a.ETag), "delete a")
	must(t, st.InsertModel(ctx(t), customModel("d", "ten1", "comp1", "name", "1")), "reuse a deleted model's pair")
	// Base models with equal names do not conflict with custom ones.
	must(t, st.UpsertBaseModel(ctx(t), baseModel("base-x", "name")), "base model")
}

func testModelUpdateIfMatch(t *testing.T, st store.Store) {
	m := customModel("m1", "ten1", "comp1", "n", "1")
	must(t, st.InsertModel(ctx(t), m), "insert")
	stale := m.ETag
	m.Description = "one"
	must(t, st.UpdateModel(ctx(t), m, stale), "update with current etag")
	m.Description = "two"
	wantErr(t, st.UpdateModel(ctx(t), m, stale), store.ErrPrecondition, "update with stale etag")
	got, _ := st.GetModel(ctx(t), "m1")
	if got.Description != "one" {
		t.Fatalf("failed update changed the model: %q", got.Description)
	}
	if got.ETag != m.ETag {
		t.Fatalf("failed update changed the caller's ETag: stored %s, caller %s", got.ETag, m.ETag)
	}
	must(t, st.UpdateModel(ctx(t), m, ""), "update without if-match")
}

func testUpsertBaseModel(t *testing.T, st store.Store) {
	b := baseModel("base-1", "llama")
	must(t, st.UpsertBaseModel(ctx(t), b), "upsert new")
	etag := b.ETag
	if etag == "" {
		t.Fatal("no ETag")
	}
	again := baseModel("base-1", "llama")
	must(t, st.UpsertBaseModel(ctx(t), again), "upsert unchanged")
	if again.ETag != etag || !again.TimeCreated.Equal(b.TimeCreated) {
		t.Fatalf("unchanged upsert: etag %s→%s, created %v→%v", etag, again.ETag, b.TimeCreated, again.TimeCreated)
	}
	changed := baseModel("base-1", "llama")
	changed.Description = "new description"
	must(t, st.UpsertBaseModel(ctx(t), changed), "upsert changed")
	if changed.ETag == etag {
		t.Fatal("changed upsert kept the ETag")
	}
	got, err := st.GetModel(ctx(t), "base-1")
	must(t, err, "get")
	if !reflect.DeepEqual(got, changed) {
		t.Fatalf("after upsert:\n got %+v\nwant %+v", got, changed)
	}
	must(t, st.InsertModel(ctx(t), customModel("custom", "ten1", "c", "n", "1")), "custom")
	wantErr(t, st.UpsertBaseModel(ctx(t), baseModel("custom", "x")), store.ErrConflict, "upsert over a custom model")
	// Servers starting at once upsert the same catalog: all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- st.UpsertBaseModel(ctx(t), baseModel("base-race", "r"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent upsert")
	}
	p, err := st.ListModels(ctx(t), store.ListQuery{ID: "base-race", IncludeBase: true})
	must(t, err, "list")
	if len(p.Items) != 1 {
		t.Fatalf("concurrent upserts left %d rows", len(p.Items))
	}
	bad := baseModel("base-2", "x")
	bad.TenancyID = "ten1"
	if err := st.UpsertBaseModel(ctx(t), bad); err == nil {
		t.Fatal("base model with a tenancy accepted")
	}
}

// ids returns the IDs of a page's models.
func ids[T any](items []T, id func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func modelID(m *core.Model) string { return m.ID }

func testListModelsFilters(t *testing.T, st store.Store) {
	seq := 0
	add := func(m *core.Model) {
		seq++
		m.TimeCreated = t0.Add(time.Duration(seq) * time.Minute)
		must(t, st.InsertModel(ctx(t), m), "insert "+m.ID)
	}
	must(t, st.UpsertBaseModel(ctx(t), func() *core.Model { b := baseModel("base", "llama"); b.TimeCreated = t0; return b }()), "base")
	add(customModel("m1", "ten1", "comp1", "alpha", "1"))
	m2 := customModel("m2", "ten1", "comp1", "beta", "1")
	m2.Vendor = "acme"
	add(m2)
	m3 := customModel("m3", "ten1", "comp2", "alpha", "2")
	m3.Capabilities = []string{core.CapabilityTextEmbeddings}
	add(m3)
	m4 := customModel("m4", "ten1", "comp1", "gone", "1")
	m4.LifecycleState = core.ModelDeleted
	add(m4)
	add(customModel("m5", "ten2", "comp1", "alpha", "1"))
	m6 := customModel("m6", "ten1", "comp1", "active", "1")
	m6.LifecycleState = core.ModelActive
	add(m6)

	cases := []struct {
		name string
		q    store.ListQuery
		want []string
	}{
		{"tenancy", store.ListQuery{TenancyID: "ten1"}, []string{"m1", "m2", "m3", "m6"}},
		{"compartment", store.ListQuery{TenancyID: "ten1", CompartmentID: "comp1"}, []string{"m1", "m2", "m6"}},
		{"with base", store.ListQuery{TenancyID: "ten1", CompartmentID: "comp1", IncludeBase: true}, []string{"base", "m1", "m2", "m6"}},
		{"base only by name", store.ListQuery{TenancyID: "ten1", DisplayName: "llama", IncludeBase: true}, []string{"base"}},
		{"base for another tenancy", store.ListQuery{TenancyID: "ten9", CompartmentID: "x", IncludeBase: true}, []string{"base"}},
		{"display name", store.ListQuery{TenancyID: "ten1", DisplayName: "alpha"}, []string{"m1", "m3"}},
		{"id", store.ListQuery{TenancyID: "ten1", ID: "m2"}, []string{"m2"}},
		{"id of another tenancy", store.ListQuery{TenancyID: "ten1", ID: "m5"}, []string{}},
		{"deleted hidden", store.ListQuery{TenancyID: "ten1", DisplayName: "gone"}, []string{}},
		{"deleted when asked", store.ListQuery{TenancyID: "ten1", LifecycleState: core.ModelDeleted}, []string{"m4"}},
		{"state", store.ListQuery{TenancyID: "ten1", LifecycleState: core.ModelActive, IncludeBase: true}, []string{"base", "m6"}},
		{"vendor", store.ListQuery{TenancyID: "ten1", Vendor: "acme"}, []string{"m2"}},
		{"capability", store.ListQuery{TenancyID: "ten1", Capability: core.CapabilityTextEmbeddings}, []string{"m3"}},
		{"capability with base", store.ListQuery{TenancyID: "ten1", Capability: core.CapabilityFineTune, IncludeBase: true}, []string{"base"}},
		{"capability is not a substring match", store.ListQuery{TenancyID: "ten1", Capability: "TEXT"}, []string{}},
		{"like wildcards are literal", store.ListQuery{TenancyID: "ten1", Capability: "%"}, []string{}},
		{"capabilities all of", store.ListQuery{TenancyID: "ten1", Capabilities: []string{core.CapabilityChat, core.CapabilityTextGeneration}}, []string{"m1", "m2", "m6"}},
		{"capabilities none has both", store.ListQuery{TenancyID: "ten1", Capabilities: []string{core.CapabilityChat, core.CapabilityTextEmbeddings}}, []string{}},
		{"capabilities with base", store.ListQuery{TenancyID: "ten1", Capabilities: []string{core.CapabilityFineTune, core.CapabilityChat}, IncludeBase: true}, []string{"base"}},
		{"capability and capabilities", store.ListQuery{TenancyID: "ten1", Capability: core.CapabilityChat, Capabilities: []string{core.CapabilityFineTune}, IncludeBase: true}, []string{"base"}},
		{"no scope", store.ListQuery{DisplayName: "alpha"}, []string{"m1", "m3", "m5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := st.ListModels(ctx(t), c.q)
			must(t, err, "list")
			if got := ids(p.Items, modelID); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			if p.Next != "" {
				t.Fatalf("Next %q on a short list", p.Next)
			}
		})
	}
}

func testListSortAndPaging(t *testing.T, st store.Store) {
	// Names and times chosen so the orders differ, with ties on time.
	rows := []struct {
		id, name, state string
		min             int
	}{{"a", "delta", core.ModelActive, 1}, {"b", "alpha", core.ModelFailed, 2}, {"c", "charlie", core.ModelCreating, 2},
		{"d", "bravo", core.ModelActive, 3}, {"e", "alpha", core.ModelCreating, 4}, {"f", "echo", core.ModelFailed, 0}}
	for _, r := range rows {
		m := customModel(r.id, "ten1", "comp1", r.name, r.id)
		m.TimeCreated = t0.Add(time.Duration(r.min) * time.Minute)
		m.LifecycleState = r.state
		must(t, st.InsertModel(ctx(t), m), "insert")
	}
	cases := []struct {
		sortBy string
		desc   bool
		want   []string
	}{
		{"", false, []string{"f", "a", "b", "c", "d", "e"}},
		{"timeCreated", true, []string{"e", "d", "c", "b", "a", "f"}},
		{"displayName", false, []string{"b", "e", "d", "c", "a", "f"}},
		{"displayName", true, []string{"f", "a", "c", "d", "e", "b"}},
		{"lifecycleState", false, []string{"a", "d", "c", "e", "b", "f"}},
		{"lifecycleState", true, []string{"f", "b", "e", "c", "d", "a"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s desc=%v", c.sortBy, c.desc), func(t *testing.T) {
			q := store.ListQuery{TenancyID: "ten1", SortBy: c.sortBy, SortDesc: c.desc}
			p, err := st.ListModels(ctx(t), q)
			must(t, err, "list")
			if got := ids(p.Items, modelID); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("one page: got %v, want %v", got, c.want)
			}
			for _, limit := range []int{1, 2, 4, 6} {
				q.Limit, q.Page = limit, ""
				var all []string
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatal("paging does not end")
					}
					p, err := st.ListModels(ctx(t), q)
					must(t, err, "list page")
					if len(p.Items) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(p.Items))
					}
					all = append(all, ids(p.Items, modelID)...)
					if p.Next == "" {
						break
					}
					q.Page = p.Next
				}
				if !reflect.DeepEqual(all, c.want) {
					t.Fatalf("limit %d: pages give %v, want %v", limit, all, c.want)
				}
			}
		})
	}
	// A page token only works for the order it was made in, and garbage is refused.
	p, err := st.ListModels(ctx(t), store.ListQuery{TenancyID: "ten1", Limit: 2})
	must(t, err, "first page")
	_, err = st.ListModels(ctx(t), store.ListQuery{TenancyID: "ten1", Limit: 2, Page: p.Next, SortBy: "displayName"})
	wantErr(t, err, store.ErrInvalidPage, "token of another order")
	_, err = st.ListModels(ctx(t), store.ListQuery{TenancyID: "ten1", Page: "not a token"})
	wantErr(t, err, store.ErrInvalidPage, "garbage token")
	_, err = st.ListModels(ctx(t), store.ListQuery{TenancyID: "ten1", SortBy: "vendor"})
	wantErr(t, err, store.ErrInvalidPage, "unknown sort")
}

func testListLimits(t *testing.T, st store.Store) {
	must(t, st.InTx(ctx(t), func(tx store.Tx) error {
		for i := range 1005 {
			c := &core.Cluster{ID: fmt.Sprintf("c%04d", i), TenancyID: "ten1", CompartmentID: "comp1", DisplayName: "c",
				Type: core.ClusterFineTuning, LifecycleState: core.ClusterActive, TimeCreated: t0.Add(time.Duration(i) * time.Second)}
			if err := tx.InsertCluster(ctx(t), c); err != nil {
				return err
			}
		}
		return nil
	}), "insert clusters")
	for _, c := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {7, 7}, {1000, 1000}, {5000, 1000}} {
		p, err := st.ListClusters(ctx(t), store.ListQuery{TenancyID: "ten1", Limit: c.limit})
		must(t, err, "list")
		if len(p.Items) != c.want || p.Next == "" {
			t.Fatalf("limit %d: got %d items (next %q), want %d and a next page", c.limit, len(p.Items), p.Next, c.want)
		}
	}
}

func testClusters(t *testing.T, st store.Store) {
	c := &core.Cluster{ID: "c1", TenancyID: "ten1", CompartmentID: "comp1", DisplayName: "ft", Description: "d",
		Type: core.ClusterFineTuning, UnitShape: "LARGE_COHERE", UnitCount: 2, LifecycleState: core.ClusterCreating,
		TimeCreated: t0, FreeformTags: map[string]string{"a": "b"}}
	must(t, st.InsertCluster(ctx(t), c), "insert")
	if c.ETag == "" || c.TimeUpdated.IsZero() {
		t.Fatal("insert did not set ETag and TimeUpdated")
	}
	got, err := st.GetCluster(ctx(t), "c1")
	must(t, err, "get")
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	_, err = st.GetCluster(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "get unknown")
	wantErr(t, st.InsertCluster(ctx(t), &core.Cluster{ID: "c1"}), store.ErrConflict, "duplicate")
	stale := c.ETag
	c.LifecycleState = core.ClusterActive
	must(t, st.UpdateCluster(ctx(t), c, stale), "update")
	wantErr(t, st.UpdateCluster(ctx(t), c, stale), store.ErrPrecondition, "stale etag")
	wantErr(t, st.UpdateCluster(ctx(t), &core.Cluster{ID: "nope"}, ""), store.ErrNotFound, "update unknown")
	must(t, st.InsertCluster(ctx(t), &core.Cluster{ID: "c2", TenancyID: "ten1", CompartmentID: "comp2", DisplayName: "h",
		Type: core.ClusterHosting, LifecycleState: core.ClusterDeleted, TimeCreated: t0.Add(time.Minute)}), "insert c2")
	must(t, st.InsertCluster(ctx(t), &core.Cluster{ID: "c3", TenancyID: "ten2", CompartmentID: "comp1", DisplayName: "ft",
		Type: core.ClusterFineTuning, LifecycleState: core.ClusterActive}), "insert c3")
	clusterID := func(c *core.Cluster) string { return c.ID }
	for _, tc := range []struct {
		name string
		q    store.ListQuery
		want []string
	}{
		{"tenancy", store.ListQuery{TenancyID: "ten1"}, []string{"c1"}},
		{"deleted", store.ListQuery{TenancyID: "ten1", LifecycleState: core.ClusterDeleted}, []string{"c2"}},
		{"compartment", store.ListQuery{TenancyID: "ten1", CompartmentID: "comp2", LifecycleState: core.ClusterDeleted}, []string{"c2"}},
		{"name", store.ListQuery{DisplayName: "ft"}, []string{"c1", "c3"}},
		{"id", store.ListQuery{ID: "c3"}, []string{"c3"}},
	} {
		p, err := st.ListClusters(ctx(t), tc.q)
		must(t, err, tc.name)
		if got := ids(p.Items, clusterID); !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testWorkRequests(t *testing.T, st store.Store) {
	started := t0.Add(time.Second)
	w := &core.WorkRequest{ID: "wr1", TenancyID: "ten1", CompartmentID: "comp1", OperationType: core.OpCreateModel,
		Status: core.WorkRequestAccepted, TimeAccepted: t0, TimeStarted: &started,
		Resources: []core.WorkRequestResource{{EntityType: core.EntityTypeModel, ActionType: core.ActionCreated, Identifier: "m_1", EntityURI: "/20231130/models/m_1"}}}
	must(t, st.InsertWorkRequest(ctx(t), w), "insert")
	if w.TimeUpdated.IsZero() {
		t.Fatal("TimeUpdated not set")
	}
	got, err := st.GetWorkRequest(ctx(t), "wr1")
	must(t, err, "get")
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, w)
	}
	_, err = st.GetWorkRequest(ctx(t), "nope")
	wantErr(t, err, store.ErrNotFound, "get unknown")
	wantErr(t, st.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr1"}), store.ErrConflict, "duplicate")
	w.Status, w.PercentComplete = core.WorkRequestSucceeded, 100
	must(t, st.UpdateWorkRequest(ctx(t), w), "update")
	got, _ = st.GetWorkRequest(ctx(t), "wr1")
	if got.Status != core.WorkRequestSucceeded || got.PercentComplete != 100 {
		t.Fatalf("update not stored: %+v", got)
	}
	wantErr(t, st.UpdateWorkRequest(ctx(t), &core.WorkRequest{ID: "nope"}), store.ErrNotFound, "update unknown")

	must(t, st.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr2", TenancyID: "ten1", CompartmentID: "comp1",
		OperationType: core.OpCreateCluster, Status: core.WorkRequestInProgress, TimeAccepted: t0.Add(time.Minute),
		Resources: []core.WorkRequestResource{{Identifier: "c1"}, {Identifier: "mx1"}}}), "insert wr2")
	must(t, st.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr3", TenancyID: "ten2", CompartmentID: "comp1",
		OperationType: core.OpCreateModel, Status: core.WorkRequestAccepted, TimeAccepted: t0.Add(2 * time.Minute),
		Resources: []core.WorkRequestResource{{Identifier: "m_1"}}}), "insert wr3")
	wrID := func(w *core.WorkRequest) string { return w.ID }
	for _, tc := range []struct {
		name     string
		q        store.ListQuery
		resource string
		want     []string
	}{
		{"tenancy", store.ListQuery{TenancyID: "ten1"}, "", []string{"wr1", "wr2"}},
		{"desc", store.ListQuery{TenancyID: "ten1", SortDesc: true}, "", []string{"wr2", "wr1"}},
		{"status", store.ListQuery{TenancyID: "ten1", LifecycleState: core.WorkRequestInProgress}, "", []string{"wr2"}},
		{"resource", store.ListQuery{TenancyID: "ten1"}, "m_1", []string{"wr1"}},
		{"resource is exact, _ is literal", store.ListQuery{TenancyID: "ten1"}, "mx1", []string{"wr2"}},
		{"resource all tenancies", store.ListQuery{}, "m_1", []string{"wr1", "wr3"}},
		{"id", store.ListQuery{ID: "wr3"}, "", []string{"wr3"}},
	} {
		p, err := st.ListWorkRequests(ctx(t), tc.q, tc.resource)
		must(t, err, tc.name)
		if got := ids(p.Items, wrID); !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	p, err := st.ListWorkRequests(ctx(t), store.ListQuery{TenancyID: "ten1", Limit: 1}, "")
	must(t, err, "page 1")
	p2, err := st.ListWorkRequests(ctx(t), store.ListQuery{TenancyID: "ten1", Limit: 1, Page: p.Next}, "")
	must(t, err, "page 2")
	if got := append(ids(p.Items, wrID), ids(p2.Items, wrID)...); !reflect.DeepEqual(got, []string{"wr1", "wr2"}) || p2.Next != "" {
		t.Fatalf("paged work requests: %v, next %q", got, p2.Next)
	}
}

func testWorkRequestLogsAndErrors(t *testing.T, st store.Store) {
	must(t, st.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr1", TenancyID: "ten1", Status: core.WorkRequestAccepted}), "insert")
	must(t, st.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr2", TenancyID: "ten1", Status: core.WorkRequestAccepted}), "insert")
	for i := range 5 {
		must(t, st.AppendWorkRequestLog(ctx(t), "wr1", core.WorkRequestLog{Message: fmt.Sprintf("log %d", i), Timestamp: t0.Add(time.Duration(i) * time.Second)}), "append log")
		must(t, st.AppendWorkRequestLog(ctx(t), "wr2", core.WorkRequestLog{Message: fmt.Sprintf("other %d", i)}), "append log")
	}
	must(t, st.AppendWorkRequestError(ctx(t), "wr1", core.WorkRequestError{Code: "InternalError", Message: "boom", Timestamp: t0}), "append error")
	wantErr(t, st.AppendWorkRequestLog(ctx(t), "nope", core.WorkRequestLog{Message: "x"}), store.ErrNotFound, "log of unknown work request")
	wantErr(t, st.AppendWorkRequestError(ctx(t), "nope", core.WorkRequestError{Code: "x"}), store.ErrNotFound, "error of unknown work request")

	var msgs []string
	page := ""
	for n := 0; ; n++ {
		p, err := st.ListWorkRequestLogs(ctx(t), "wr1", store.LogQuery{Limit: 2, Page: page})
		must(t, err, "list logs")
		if len(p.Items) > 2 || n > 5 {
			t.Fatalf("page of %d (page %d)", len(p.Items), n)
		}
		for _, l := range p.Items {
			msgs = append(msgs, l.Message)
		}
		if n == 0 && !p.Items[1].Timestamp.Equal(t0.Add(time.Second)) {
			t.Fatalf("timestamp: %v", p.Items[1].Timestamp)
		}
		if p.Next == "" {
			break
		}
		page = p.Next
	}
	if want := []string{"log 0", "log 1", "log 2", "log 3", "log 4"}; !reflect.DeepEqual(msgs, want) {
		t.Fatalf("logs: got %v, want %v", msgs, want)
	}
	p, err := st.ListWorkRequestLogs(ctx(t), "wr2", store.LogQuery{})
	must(t, err, "logs of wr2")
	if len(p.Items) != 5 || p.Items[0].Timestamp.IsZero() {
		t.Fatalf("logs of wr2: %+v", p.Items)
	}
	_, err = st.ListWorkRequestLogs(ctx(t), "nope", store.LogQuery{})
	wantErr(t, err, store.ErrNotFound, "logs of unknown work request")
	_, err = st.ListWorkRequestLogs(ctx(t), "wr1", store.LogQuery{Page: "garbage"})
	wantErr(t, err, store.ErrInvalidPage, "garbage page")
	e, err := st.ListWorkRequestErrors(ctx(t), "wr1", store.LogQuery{})
	must(t, err, "list errors")
	if want := []core.WorkRequestError{{Code: "InternalError", Message: "boom", Timestamp: t0}}; !reflect.DeepEqual(e.Items, want) || e.Next != "" {
		t.Fatalf("errors: got %+v, want %+v", e, want)
	}
	e, err = st.ListWorkRequestErrors(ctx(t), "wr2", store.LogQuery{})
	must(t, err, "errors of wr2")
	if len(e.Items) != 0 {
		t.Fatalf("errors of wr2: %+v", e.Items)
	}
	_, err = st.ListWorkRequestErrors(ctx(t), "nope", store.LogQuery{})
	wantErr(t, err, store.ErrNotFound, "errors of unknown work request")

	// Desc orders the whole list newest first, across pages, for logs and errors.
	for i := 1; i < 5; i++ {
		must(t, st.AppendWorkRequestError(ctx(t), "wr1", core.WorkRequestError{Code: "E", Message: fmt.Sprintf("err %d", i)}), "append error")
	}
	for _, limit := range []int{1, 2, 3, 5, 0} {
		var logs, errs []string
		lq, eq := store.LogQuery{Limit: limit, Desc: true}, store.LogQuery{Limit: limit, Desc: true}
		for n := 0; ; n++ {
			if n > 6 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			p, err := st.ListWorkRequestLogs(ctx(t), "wr1", lq)
			must(t, err, "list logs desc")
			for _, l := range p.Items {
				logs = append(logs, l.Message)
			}
			e, err := st.ListWorkRequestErrors(ctx(t), "wr1", eq)
			must(t, err, "list errors desc")
			for _, x := range e.Items {
				errs = append(errs, x.Message)
			}
			if p.Next == "" && e.Next == "" {
				break
			}
			lq.Page, eq.Page = p.Next, e.Next
			if p.Next == "" {
				lq.Page = "d0" // exhausted: a token before every row gives an empty page
			}
			if e.Next == "" {
				eq.Page = "d0"
			}
		}
		if want := []string{"log 4", "log 3", "log 2", "log 1", "log 0"}; !reflect.DeepEqual(logs, want) {
			t.Fatalf("limit %d: logs desc %v, want %v", limit, logs, want)
		}
		if want := []string{"err 4", "err 3", "err 2", "err 1", "boom"}; !reflect.DeepEqual(errs, want) {
			t.Fatalf("limit %d: errors desc %v, want %v", limit, errs, want)
		}
	}
	p, err = st.ListWorkRequestLogs(ctx(t), "wr1", store.LogQuery{Limit: 2})
	must(t, err, "first page asc")
	_, err = st.ListWorkRequestLogs(ctx(t), "wr1", store.LogQuery{Limit: 2, Page: p.Next, Desc: true})
	wantErr(t, err, store.ErrInvalidPage, "ascending token used descending")
	p, err = st.ListWorkRequestLogs(ctx(t), "wr1", store.LogQuery{Limit: 2, Desc: true})
	must(t, err, "first page desc")
	_, err = st.ListWorkRequestLogs(ctx(t), "wr1", store.LogQuery{Limit: 2, Page: p.Next})
	wantErr(t, err, store.ErrInvalidPage, "descending token used ascending")
}

func testRetryTokens(t *testing.T, st store.Store) {
	now := time.Now().UTC()
	tok := &core.RetryToken{TenancyID: "ten1", Token: "tok", Operation: "CreateModel", BodyHash: "abc", ResourceID: "m1",
		WorkRequestID: "wr1", TimeCreated: now.Add(-time.Hour)}
	must(t, st.PutRetryToken(ctx(t), tok), "put")
	got, err := st.GetRetryToken(ctx(t), "ten1", "tok", now)
	must(t, err, "get")
	if !reflect.DeepEqual(got, tok) {
		t.Fatalf("round trip: got %+v, want %+v", got, tok)
	}
	_, err = st.GetRetryToken(ctx(t), "ten2", "tok", now)
	wantErr(t, err, store.ErrNotFound, "token of another tenancy")
	_, err = st.GetRetryToken(ctx(t), "ten1", "tok", now.Add(22*time.Hour+59*time.Minute))
	must(t, err, "token just inside 24 hours")
	_, err = st.GetRetryToken(ctx(t), "ten1", "tok", now.Add(23*time.Hour+time.Minute))
	wantErr(t, err, store.ErrNotFound, "token older than 24 hours")
	dup := *tok
	dup.TimeCreated = now
	wantErr(t, st.PutRetryToken(ctx(t), &dup), store.ErrConflict, "duplicate token")
	// Once expired, the token may be stored again.
	again := *tok
	again.ResourceID, again.TimeCreated = "m2", now.Add(24*time.Hour)
	must(t, st.PutRetryToken(ctx(t), &again), "reuse an expired token")
	got, err = st.GetRetryToken(ctx(t), "ten1", "tok", now.Add(24*time.Hour))
	must(t, err, "get reused")
	if got.ResourceID != "m2" {
		t.Fatalf("reused token: %+v", got)
	}
	must(t, st.PutRetryToken(ctx(t), &core.RetryToken{TenancyID: "ten2", Token: "tok"}), "same token, other tenancy")
}

func testInTx(t *testing.T, st store.Store) {
	boom := errors.New("boom")
	err := st.InTx(ctx(t), func(tx store.Tx) error {
		if err := tx.InsertModel(ctx(t), customModel("m1", "ten1", "c", "n", "1")); err != nil {
			return err
		}
		if _, err := tx.GetModel(ctx(t), "m1"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		if err := tx.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr1", TenancyID: "ten1"}); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom, "InTx returns fn's error")
	_, err = st.GetModel(ctx(t), "m1")
	wantErr(t, err, store.ErrNotFound, "rolled back model")
	_, err = st.GetWorkRequest(ctx(t), "wr1")
	wantErr(t, err, store.ErrNotFound, "rolled back work request")

	must(t, st.InTx(ctx(t), func(tx store.Tx) error {
		if err := tx.InsertModel(ctx(t), customModel("m1", "ten1", "c", "n", "1")); err != nil {
			return err
		}
		return tx.EnqueueJob(ctx(t), &core.Job{Kind: "fine-tune", ResourceID: "m1"})
	}), "commit")
	_, err = st.GetModel(ctx(t), "m1")
	must(t, err, "committed model")
	_, err = st.GetJobByResource(ctx(t), "m1")
	must(t, err, "committed job")

	// A failing statement inside fn rolls back what came before it.
	err = st.InTx(ctx(t), func(tx store.Tx) error {
		if err := tx.InsertModel(ctx(t), customModel("m2", "ten1", "c", "n2", "1")); err != nil {
			return err
		}
		return tx.InsertModel(ctx(t), customModel("m3", "ten1", "c", "n", "1")) // conflicts with m1
	})
	wantErr(t, err, store.ErrConflict, "conflict in tx")
	_, err = st.GetModel(ctx(t), "m2")
	wantErr(t, err, store.ErrNotFound, "m2 rolled back")
}

// testListSortKeys checks every sort key the SDK's list requests allow
// (ListModelsSortByEnum, ListDedicatedAiClustersSortByEnum,
// ListWorkRequestsSortByEnum), paged one row at a time, on each list.
func testListSortKeys(t *testing.T, st store.Store) {
	states := []string{core.ClusterFailed, core.ClusterActive, core.ClusterCreating, core.ClusterActive}
	for i, state := range states {
		id := fmt.Sprintf("c%d", i)
		must(t, st.InsertCluster(ctx(t), &core.Cluster{ID: id, TenancyID: "ten1", CompartmentID: "comp1",
			DisplayName: fmt.Sprintf("n%d", 3-i), Type: core.ClusterFineTuning, LifecycleState: state,
			TimeCreated: t0.Add(time.Duration(i) * time.Minute)}), "insert "+id)
		must(t, st.InsertWorkRequest(ctx(t), &core.WorkRequest{ID: "wr" + id, TenancyID: "ten1", CompartmentID: "comp1",
			Status: core.WorkRequestAccepted, TimeAccepted: t0.Add(time.Duration(i) * time.Minute)}), "insert work request")
	}
	clusterID := func(c *core.Cluster) string { return c.ID }
	wrID := func(w *core.WorkRequest) string { return w.ID }
	for _, tc := range []struct {
		sortBy string
		desc   bool
		want   []string
	}{
		{"timeCreated", false, []string{"c0", "c1", "c2", "c3"}},
		{"displayName", false, []string{"c3", "c2", "c1", "c0"}},
		{"lifecycleState", false, []string{"c1", "c3", "c2", "c0"}},
		{"lifecycleState", true, []string{"c0", "c2", "c3", "c1"}},
	} {
		q := store.ListQuery{TenancyID: "ten1", SortBy: tc.sortBy, SortDesc: tc.desc, Limit: 1}
		var got []string
		for range 10 {
			p, err := st.ListClusters(ctx(t), q)
			must(t, err, "list clusters by "+tc.sortBy)
			got = append(got, ids(p.Items, clusterID)...)
			if q.Page = p.Next; q.Page == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("clusters by %s desc=%v: got %v, want %v", tc.sortBy, tc.desc, got, tc.want)
		}
	}
	for _, desc := range []bool{false, true} {
		q := store.ListQuery{TenancyID: "ten1", SortBy: "timeAccepted", SortDesc: desc, Limit: 3}
		var got []string
		for range 10 {
			p, err := st.ListWorkRequests(ctx(t), q, "")
			must(t, err, "list work requests by timeAccepted")
			got = append(got, ids(p.Items, wrID)...)
			if q.Page = p.Next; q.Page == "" {
				break
			}
		}
		want := []string{"wrc0", "wrc1", "wrc2", "wrc3"}
		if desc {
			slices.Reverse(want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("work requests by timeAccepted desc=%v: got %v, want %v", desc, got, want)
		}
	}
	_, err := st.ListWorkRequests(ctx(t), store.ListQuery{TenancyID: "ten1", SortBy: "displayName"}, "")
	wantErr(t, err, store.ErrInvalidPage, "work requests by displayName")
	_, err = st.ListClusters(ctx(t), store.ListQuery{TenancyID: "ten1", SortBy: "vendor"})
	wantErr(t, err, store.ErrInvalidPage, "clusters by vendor")
}
