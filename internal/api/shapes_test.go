package api_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/server/servertest"
)

// sdkFields returns the JSON names of a SDK type's fields and which of
// them are mandatory.
func sdkFields(t reflect.Type) (all, mandatory map[string]bool) {
	all, mandatory = map[string]bool{}, map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		all[name] = true
		if f.Tag.Get("mandatory") == "true" {
			mandatory[name] = true
		}
	}
	return all, mandatory
}

// checkShape asserts that obj has every mandatory field of the SDK type
// and no field the type does not have.
func checkShape(t *testing.T, what string, obj map[string]any, typ reflect.Type, extra ...string) {
	t.Helper()
	all, mandatory := sdkFields(typ)
	for _, e := range extra {
		all[e] = true
	}
	for k := range obj {
		if !all[k] {
			t.Errorf("%s has field %q, which %s does not", what, k, typ.Name())
		}
	}
	for k := range mandatory {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s lacks mandatory field %q of %s", what, k, typ.Name())
		}
	}
}

func getJSON(t *testing.T, s *servertest.Server, path string) map[string]any {
	t.Helper()
	resp, body := s.Do(t, "GET", path, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestJSONShapes checks the server's JSON against the SDK's types field
// by field, including the polymorphic parts.
func TestJSONShapes(t *testing.T) {
	s := startServer(t, false, nil)
	putDataset(t, s, "data", "train.jsonl")
	ten := s.TenancyID
	ft := createCluster(t, s.GenAI, ten, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)
	host := createCluster(t, s.GenAI, ten, "host", generativeai.DedicatedAiClusterTypeHosting, 1)
	for _, tc := range []generativeai.TrainingConfig{nil, generativeai.TFewTrainingConfig{}, generativeai.VanillaTrainingConfig{}} {
		d := modelDetails(ten, server.BaseModelID(server.DefaultBaseModelName), *ft.Id, s.Namespace, "data", "train.jsonl", tc)
		r, err := s.GenAI.CreateModel(t.Context(), generativeai.CreateModelRequest{CreateModelDetails: d})
		if err != nil {
			t.Fatal(err)
		}
		waitWR(t, s.GenAI, *r.OpcWorkRequestId)
		m := getJSON(t, s, "/20231130/models/"+*r.Id)
		checkShape(t, "Model", m, reflect.TypeOf(generativeai.Model{}))
		ftd := m["fineTuneDetails"].(map[string]any)
		checkShape(t, "FineTuneDetails", ftd, reflect.TypeOf(generativeai.FineTuneDetails{}))
		checkShape(t, "ObjectStorageDataset", ftd["trainingDataset"].(map[string]any), reflect.TypeOf(generativeai.ObjectStorageDataset{}), "datasetType")
		cfg := ftd["trainingConfig"].(map[string]any)
		var typ reflect.Type
		switch cfg["trainingConfigType"] {
		case "LORA_TRAINING_CONFIG":
			typ = reflect.TypeOf(generativeai.LoraTrainingConfig{})
		case "TFEW_TRAINING_CONFIG":
			typ = reflect.TypeOf(generativeai.TFewTrainingConfig{})
		case "VANILLA_TRAINING_CONFIG":
			typ = reflect.TypeOf(generativeai.VanillaTrainingConfig{})
		default:
			t.Fatalf("trainingConfigType %v", cfg["trainingConfigType"])
		}
		checkShape(t, typ.Name(), cfg, typ, "trainingConfigType")
		wr := getJSON(t, s, "/20231130/workRequests/"+*r.OpcWorkRequestId)
		checkShape(t, "WorkRequest", wr, reflect.TypeOf(generativeai.WorkRequest{}))
		for _, res := range wr["resources"].([]any) {
			checkShape(t, "WorkRequestResource", res.(map[string]any), reflect.TypeOf(generativeai.WorkRequestResource{}))
		}
		for _, e := range getJSON(t, s, "/20231130/workRequests/"+*r.OpcWorkRequestId+"/errors")["items"].([]any) {
			checkShape(t, "WorkRequestError", e.(map[string]any), reflect.TypeOf(generativeai.WorkRequestError{}))
		}
		for _, e := range getJSON(t, s, "/20231130/workRequests/"+*r.OpcWorkRequestId+"/logs")["items"].([]any) {
			checkShape(t, "WorkRequestLogEntry", e.(map[string]any), reflect.TypeOf(generativeai.WorkRequestLogEntry{}))
		}
	}
	checkShape(t, "Model (base)", getJSON(t, s, "/20231130/models/"+server.BaseModelID(server.DefaultBaseModelName)), reflect.TypeOf(generativeai.Model{}))
	for _, it := range getJSON(t, s, "/20231130/models?compartmentId="+ten)["items"].([]any) {
		checkShape(t, "ModelSummary", it.(map[string]any), reflect.TypeOf(generativeai.ModelSummary{}))
	}
	for _, id := range []string{*ft.Id, *host.Id} {
		c := getJSON(t, s, "/20231130/dedicatedAiClusters/"+id)
		checkShape(t, "DedicatedAiCluster", c, reflect.TypeOf(generativeai.DedicatedAiCluster{}), "description", "capacity")
		if capy, ok := c["capacity"].(map[string]any); ok {
			checkShape(t, "DedicatedAiClusterHostingCapacity", capy, reflect.TypeOf(generativeai.DedicatedAiClusterHostingCapacity{}), "capacityType")
		}
	}
	for _, it := range getJSON(t, s, "/20231130/dedicatedAiClusters?compartmentId="+ten)["items"].([]any) {
		checkShape(t, "DedicatedAiClusterSummary", it.(map[string]any), reflect.TypeOf(generativeai.DedicatedAiClusterSummary{}), "description", "capacity")
	}
	for _, it := range getJSON(t, s, "/20231130/workRequests?compartmentId="+ten)["items"].([]any) {
		checkShape(t, "WorkRequestSummary", it.(map[string]any), reflect.TypeOf(generativeai.WorkRequestSummary{}))
	}
}
