package api

import "net/http"

// routes registers every operation of the API.
func (s *Server) routes(mux *http.ServeMux) {
	s.handle(mux, "POST /models", "CreateModel", s.createModel)
	s.handle(mux, "GET /models", "ListModels", s.listModels)
	s.handle(mux, "GET /models/{modelId}", "GetModel", s.getModel)
	s.handle(mux, "PUT /models/{modelId}", "UpdateModel", s.updateModel)
	s.handle(mux, "DELETE /models/{modelId}", "DeleteModel", s.deleteModel)
	s.handle(mux, "POST /models/{modelId}/actions/changeCompartment", "ChangeModelCompartment", s.changeModelCompartment)

	s.handle(mux, "POST /dedicatedAiClusters", "CreateDedicatedAiCluster", s.createCluster)
	s.handle(mux, "GET /dedicatedAiClusters", "ListDedicatedAiClusters", s.listClusters)
	s.handle(mux, "GET /dedicatedAiClusters/{dedicatedAiClusterId}", "GetDedicatedAiCluster", s.getCluster)
	s.handle(mux, "PUT /dedicatedAiClusters/{dedicatedAiClusterId}", "UpdateDedicatedAiCluster", s.updateCluster)
	s.handle(mux, "DELETE /dedicatedAiClusters/{dedicatedAiClusterId}", "DeleteDedicatedAiCluster", s.deleteCluster)
	s.handle(mux, "POST /dedicatedAiClusters/{dedicatedAiClusterId}/actions/changeCompartment", "ChangeDedicatedAiClusterCompartment", s.changeClusterCompartment)

	s.handle(mux, "GET /workRequests", "ListWorkRequests", s.listWorkRequests)
	s.handle(mux, "GET /workRequests/{workRequestId}", "GetWorkRequest", s.getWorkRequest)
	s.handle(mux, "GET /workRequests/{workRequestId}/errors", "ListWorkRequestErrors", s.listWorkRequestErrors)
	s.handle(mux, "GET /workRequests/{workRequestId}/logs", "ListWorkRequestLogs", s.listWorkRequestLogs)
}
