package api_test

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"

	"github.com/gantryml/gantry/internal/server"
)

// declaredHeaders returns the lower-case names of the response type's
// fields tagged presentIn:"header".
func declaredHeaders(resp any) []string {
	var out []string
	t := reflect.TypeOf(resp)
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("presentIn") == "header" {
			out = append(out, strings.ToLower(f.Tag.Get("name")))
		}
	}
	sort.Strings(out)
	return out
}

// Headers every HTTP response may carry, whatever the SDK type declares.
var transportHeaders = []string{"content-type", "content-length", "date"}

// Declared headers sent only in some states: a next page, a work request
// still running, a deprecated base model.
var conditionalHeaders = []string{"opc-next-page", "retry-after", "model-deprecation-info"}

// TestResponseHeaders calls every Generative AI operation through the
// SDK and checks that the response carries exactly the headers its SDK
// response type declares (presentIn:"header"): each declared header is
// sent (unless conditional, see conditionalHeaders) and no other header
// but the transport's.
func TestResponseHeaders(t *testing.T) {
	s := startServer(t, false, nil)
	c := s.GenAI
	ctx := context.Background()
	ten := s.TenancyID
	comp := s.NewCompartment(t, ten, "moved")
	putDataset(t, s, "data", "train.jsonl")
	base := server.BaseModelID(server.DefaultBaseModelName)

	var cluster, model, wr *string
	type call struct {
		name string
		do   func() (any, error)
	}
	calls := []call{
		{"CreateDedicatedAiCluster", func() (any, error) {
			r, err := c.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
				Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: &ten, UnitCount: common.Int(1), UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallCohere}})
			cluster, wr = r.Id, r.OpcWorkRequestId
			if err == nil {
				waitWR(t, c, *wr)
			}
			return r, err
		}},
		{"GetDedicatedAiCluster", func() (any, error) {
			return c.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: cluster})
		}},
		{"ListDedicatedAiClusters", func() (any, error) {
			return c.ListDedicatedAiClusters(ctx, generativeai.ListDedicatedAiClustersRequest{CompartmentId: &ten})
		}},
		{"UpdateDedicatedAiCluster", func() (any, error) {
			r, err := c.UpdateDedicatedAiCluster(ctx, generativeai.UpdateDedicatedAiClusterRequest{DedicatedAiClusterId: cluster,
				UpdateDedicatedAiClusterDetails: generativeai.UpdateDedicatedAiClusterDetails{Description: common.String("d")}})
			if err == nil && r.OpcWorkRequestId != nil {
				waitWR(t, c, *r.OpcWorkRequestId)
			}
			return r, err
		}},
		{"CreateModel", func() (any, error) {
			r, err := c.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: modelDetails(ten, base, *cluster, s.Namespace, "data", "train.jsonl", nil)})
			model, wr = r.Id, r.OpcWorkRequestId
			if err == nil {
				waitWR(t, c, *wr)
			}
			return r, err
		}},
		{"GetModel", func() (any, error) { return c.GetModel(ctx, generativeai.GetModelRequest{ModelId: model}) }},
		{"ListModels", func() (any, error) {
			return c.ListModels(ctx, generativeai.ListModelsRequest{CompartmentId: &ten})
		}},
		{"UpdateModel", func() (any, error) {
			return c.UpdateModel(ctx, generativeai.UpdateModelRequest{ModelId: model, UpdateModelDetails: generativeai.UpdateModelDetails{Description: common.String("d")}})
		}},
		{"GetWorkRequest", func() (any, error) {
			return c.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: wr})
		}},
		{"ListWorkRequests", func() (any, error) {
			return c.ListWorkRequests(ctx, generativeai.ListWorkRequestsRequest{CompartmentId: &ten})
		}},
		{"ListWorkRequestLogs", func() (any, error) {
			return c.ListWorkRequestLogs(ctx, generativeai.ListWorkRequestLogsRequest{WorkRequestId: wr})
		}},
		{"ListWorkRequestErrors", func() (any, error) {
			return c.ListWorkRequestErrors(ctx, generativeai.ListWorkRequestErrorsRequest{WorkRequestId: wr})
		}},
		{"ChangeModelCompartment", func() (any, error) {
			return c.ChangeModelCompartment(ctx, generativeai.ChangeModelCompartmentRequest{ModelId: model,
				ChangeModelCompartmentDetails: generativeai.ChangeModelCompartmentDetails{CompartmentId: &comp}})
		}},
		{"DeleteModel", func() (any, error) {
			r, err := c.DeleteModel(ctx, generativeai.DeleteModelRequest{ModelId: model})
			if err == nil {
				waitWR(t, c, *r.OpcWorkRequestId)
			}
			return r, err
		}},
		{"ChangeDedicatedAiClusterCompartment", func() (any, error) {
			return c.ChangeDedicatedAiClusterCompartment(ctx, generativeai.ChangeDedicatedAiClusterCompartmentRequest{DedicatedAiClusterId: cluster,
				ChangeDedicatedAiClusterCompartmentDetails: generativeai.ChangeDedicatedAiClusterCompartmentDetails{CompartmentId: &comp}})
		}},
		{"DeleteDedicatedAiCluster", func() (any, error) {
			return c.DeleteDedicatedAiCluster(ctx, generativeai.DeleteDedicatedAiClusterRequest{DedicatedAiClusterId: cluster})
		}},
	}
	for _, cl := range calls {
		resp, err := cl.do()
		if err != nil {
			t.Fatalf("%s: %v", cl.name, err)
		}
		sent := reflect.ValueOf(resp).FieldByName("RawResponse").Interface().(*http.Response).Header
		declared := declaredHeaders(resp)
		for _, h := range declared {
			if sent.Get(h) == "" && !slices.Contains(conditionalHeaders, h) {
				t.Errorf("%s: declared header %s not sent (sent %v)", cl.name, h, sent)
			}
		}
		for h := range sent {
			h = strings.ToLower(h)
			if !slices.Contains(declared, h) && !slices.Contains(transportHeaders, h) {
				t.Errorf("%s: header %s is not in the SDK's %T", cl.name, h, resp)
			}
		}
	}
}
