package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/server"
)

// TestBodyErrors sends each operation that takes a JSON body unknown
// fields, values of the wrong JSON type (at the top and nested) and
// malformed JSON: each is a 400 InvalidParameter naming the field, or
// CannotParseRequest for what is not JSON, and nothing is created.
func TestBodyErrors(t *testing.T) {
	s := startServer(t, false, nil)
	c := s.GenAI
	ctx := context.Background()
	ten := s.TenancyID
	putDataset(t, s, "data", "train.jsonl")
	ft := createCluster(t, c, ten, "ft", generativeai.DedicatedAiClusterTypeFineTuning, 1)
	base := server.BaseModelID(server.DefaultBaseModelName)
	m, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: modelDetails(ten, base, *ft.Id, s.Namespace, "data", "train.jsonl", nil)})
	if err != nil {
		t.Fatal(err)
	}
	// model returns a CreateModel body with the dataset and trainingConfig given.
	model := func(top, dataset, config string) string {
		if dataset == "" {
			dataset = `{"datasetType":"OBJECT_STORAGE","namespaceName":"` + s.Namespace + `","bucketName":"data","objectName":"train.jsonl"}`
		}
		if config == "" {
			config = "null"
		}
		return `{"compartmentId":"` + ten + `","baseModelId":"` + base + `",` + top + `"fineTuneDetails":{"dedicatedAiClusterId":"` + *ft.Id +
			`","trainingDataset":` + dataset + `,"trainingConfig":` + config + `}}`
	}
	cluster := func(extra string) string {
		return `{"type":"FINE_TUNING","compartmentId":"` + ten + `","unitCount":1,"unitShape":"SMALL_COHERE"` + extra + `}`
	}
	const (
		createModel   = "/20231130/models"
		createCluster = "/20231130/dedicatedAiClusters"
	)
	updateModel := "/20231130/models/" + *m.Id
	updateCluster := "/20231130/dedicatedAiClusters/" + *ft.Id
	moveModel := updateModel + "/actions/changeCompartment"
	moveCluster := updateCluster + "/actions/changeCompartment"
	cases := []struct {
		name, method, path, body, code, field string
	}{
		{"model ok body", "POST", createModel, model("", "", ""), "", ""},
		{"model unknown top field", "POST", createModel, model(`"colour":"red",`, "", ""), "InvalidParameter", "colour"},
		{"model unknown fineTuneDetails field", "POST", createModel, strings.Replace(model("", "", ""), `"fineTuneDetails":{`, `"fineTuneDetails":{"gpus":2,`, 1), "InvalidParameter", "gpus"},
		{"model unknown dataset field", "POST", createModel, model("", `{"datasetType":"OBJECT_STORAGE","namespaceName":"n","bucketName":"b","objectName":"o","region":"x"}`, ""), "InvalidParameter", "region"},
		{"model unknown trainingConfig field", "POST", createModel, model("", "", `{"trainingConfigType":"LORA_TRAINING_CONFIG","warmup":3}`), "InvalidParameter", "warmup"},
		{"model displayName number", "POST", createModel, model(`"displayName":5,`, "", ""), "InvalidParameter", "displayName"},
		{"model freeformTags value number", "POST", createModel, model(`"freeformTags":{"a":1},`, "", ""), "InvalidParameter", "freeformTags"},
		{"model definedTags not object", "POST", createModel, model(`"definedTags":[],`, "", ""), "InvalidParameter", "definedTags"},
		{"model fineTuneDetails string", "POST", createModel, `{"compartmentId":"` + ten + `","baseModelId":"` + base + `","fineTuneDetails":"x"}`, "InvalidParameter", "fineTuneDetails"},
		{"model dataset bucketName number", "POST", createModel, model("", `{"datasetType":"OBJECT_STORAGE","namespaceName":"n","bucketName":7,"objectName":"o"}`, ""), "InvalidParameter", "bucketName"},
		{"model epochs string", "POST", createModel, model("", "", `{"trainingConfigType":"LORA_TRAINING_CONFIG","totalTrainingEpochs":"3"}`), "InvalidParameter", "totalTrainingEpochs"},
		{"model epochs fraction", "POST", createModel, model("", "", `{"trainingConfigType":"LORA_TRAINING_CONFIG","totalTrainingEpochs":2.5}`), "InvalidParameter", "totalTrainingEpochs"},
		{"model not json", "POST", createModel, `{"compartmentId":`, "CannotParseRequest", ""},
		{"model array", "POST", createModel, `[]`, "InvalidParameter", ""},
		{"model trailing data", "POST", createModel, model("", "", "") + "{}", "CannotParseRequest", ""},
		{"update model unknown field", "PUT", updateModel, `{"baseModelId":"x"}`, "InvalidParameter", "baseModelId"},
		{"update model description number", "PUT", updateModel, `{"description":1}`, "InvalidParameter", "description"},
		{"update model tags array", "PUT", updateModel, `{"freeformTags":["a"]}`, "InvalidParameter", "freeformTags"},
		{"update model not json", "PUT", updateModel, `{`, "CannotParseRequest", ""},
		{"cluster unknown field", "POST", createCluster, cluster(`,"gpus":8`), "InvalidParameter", "gpus"},
		{"cluster unitCount string", "POST", createCluster, `{"type":"FINE_TUNING","compartmentId":"` + ten + `","unitCount":"1","unitShape":"SMALL_COHERE"}`, "InvalidParameter", "unitCount"},
		{"cluster displayName bool", "POST", createCluster, cluster(`,"displayName":true`), "InvalidParameter", "displayName"},
		{"update cluster unitCount string", "PUT", updateCluster, `{"unitCount":"2"}`, "InvalidParameter", "unitCount"},
		{"update cluster unknown field", "PUT", updateCluster, `{"type":"HOSTING"}`, "InvalidParameter", "type"},
		{"move model compartment number", "POST", moveModel, `{"compartmentId":5}`, "InvalidParameter", "compartmentId"},
		{"move model unknown field", "POST", moveModel, `{"compartmentId":"` + ten + `","force":true}`, "InvalidParameter", "force"},
		{"move cluster compartment number", "POST", moveCluster, `{"compartmentId":5}`, "InvalidParameter", "compartmentId"},
		{"move cluster unknown field", "POST", moveCluster, `{"compartmentId":"` + ten + `","force":true}`, "InvalidParameter", "force"},
	}
	for _, tc := range cases {
		resp, body := s.Do(t, tc.method, tc.path, []byte(tc.body), nil)
		if tc.code == "" {
			if resp.StatusCode/100 != 2 {
				t.Fatalf("%s: the well-formed body is refused: %d %s", tc.name, resp.StatusCode, body)
			}
			continue
		}
		var e struct{ Code, Message string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s: error body %q: %v", tc.name, body, err)
		}
		if resp.StatusCode != 400 || e.Code != tc.code {
			t.Errorf("%s: got %d %s %q, want 400 %s", tc.name, resp.StatusCode, e.Code, e.Message, tc.code)
		}
		if !strings.Contains(e.Message, tc.field) {
			t.Errorf("%s: message %q does not name %q", tc.name, e.Message, tc.field)
		}
		if resp.Header.Get("opc-request-id") == "" {
			t.Errorf("%s: no opc-request-id", tc.name)
		}
	}
	// Only the well-formed CreateModel and the first one made a model.
	l, err := c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten, LifecycleState: "", Capability: nil})
	if err != nil {
		t.Fatal(err)
	}
	custom := 0
	for _, it := range l.Items {
		if it.Type == generativeai.ModelTypeCustom {
			custom++
		}
	}
	if custom != 2 {
		t.Errorf("%d custom models after the bad bodies, want 2", custom)
	}
}
