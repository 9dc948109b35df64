package api

// routes registers every operation of the API.
func (s *Server) routes(rt *router) {
	rt.handle("POST /models", "CreateModel", s.createModel)
	rt.handle("GET /models", "ListModels", s.listModels)
	rt.handle("GET /models/{modelId}", "GetModel", s.getModel)
	rt.handle("PUT /models/{modelId}", "UpdateModel", s.updateModel)
	rt.handle("DELETE /models/{modelId}", "DeleteModel", s.deleteModel)
	rt.handle("POST /models/{modelId}/actions/changeCompartment", "ChangeModelCompartment", s.changeModelCompartment)

	rt.handle("POST /dedicatedAiClusters", "CreateDedicatedAiCluster", s.createCluster)
	rt.handle("GET /dedicatedAiClusters", "ListDedicatedAiClusters", s.listClusters)
	rt.handle("GET /dedicatedAiClusters/{dedicatedAiClusterId}", "GetDedicatedAiCluster", s.getCluster)
	rt.handle("PUT /dedicatedAiClusters/{dedicatedAiClusterId}", "UpdateDedicatedAiCluster", s.updateCluster)
	rt.handle("DELETE /dedicatedAiClusters/{dedicatedAiClusterId}", "DeleteDedicatedAiCluster", s.deleteCluster)
	rt.handle("POST /dedicatedAiClusters/{dedicatedAiClusterId}/actions/changeCompartment", "ChangeDedicatedAiClusterCompartment", s.changeClusterCompartment)

	rt.handle("GET /workRequests", "ListWorkRequests", s.listWorkRequests)
	rt.handle("GET /workRequests/{workRequestId}", "GetWorkRequest", s.getWorkRequest)
	rt.handle("GET /workRequests/{workRequestId}/errors", "ListWorkRequestErrors", s.listWorkRequestErrors)
	rt.handle("GET /workRequests/{workRequestId}/logs", "ListWorkRequestLogs", s.listWorkRequestLogs)
}
