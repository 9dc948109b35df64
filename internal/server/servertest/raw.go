package servertest

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/gantryml/gantry/internal/auth"
)

// Do sends a request signed with the bootstrap key, for what an SDK client
// cannot send (invalid enum values, unknown fields, missing mandatory
// fields). path starts with "/"; header may be nil. It returns the
// response with its body read.
func (s *Server) Do(t testing.TB, method, path string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	signer, err := auth.LoadSigner(auth.ConfigPath(s.DataDir), "DEFAULT")
	if err != nil {
		t.Fatalf("load signer: %v", err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.BaseURL+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if err := signer.Sign(req); err != nil {
		t.Fatalf("sign: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp, b
}
