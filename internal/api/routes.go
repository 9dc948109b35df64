package api

import "net/http"

// routes registers every operation of the API.
func (s *Server) routes(mux *http.ServeMux) {
}
