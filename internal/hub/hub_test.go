package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeHub serves a repository's API listing and files, honouring Range,
// and can cut a file short or corrupt it.
type fakeHub struct {
	mu        sync.Mutex
	files     map[string][]byte // served content
	lfs       map[string]bool   // listed as LFS (sha256) rather than git blobs
	listed    map[string][]byte // content the listing's checksums describe (default: files)
	cutOnce   map[string]int    // serve only this many bytes once, then drop the connection
	ranges    []string          // Range headers seen, "file:range"
	downloads int
	token     string
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token {
		http.Error(w, "gated", http.StatusUnauthorized)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/models/org/repo/revision/") {
		var sib []map[string]any
		for name, data := range h.files {
			listed := data
			if l, ok := h.listed[name]; ok {
				listed = l
			}
			s := map[string]any{"rfilename": name, "size": len(listed)}
			if h.lfs[name] {
				sum := sha256.Sum256(listed)
				s["lfs"] = map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(listed), "pointerSize": 130}
			} else {
				g := sha1.New()
				fmt.Fprintf(g, "blob %d\x00", len(listed))
				g.Write(listed)
				s["blobId"] = hex.EncodeToString(g.Sum(nil))
			}
			sib = append(sib, s)
		}
		json.NewEncoder(w).Encode(map[string]any{"id": "org/repo", "sha": "0123456789abcdef0123456789abcdef01234567", "siblings": sib})
		return
	}
	prefix := "/org/repo/resolve/0123456789abcdef0123456789abcdef01234567/"
	name, ok := strings.CutPrefix(r.URL.Path, prefix)
	data, exists := h.files[name]
	if !ok || !exists {
		http.NotFound(w, r)
		return
	}
	h.downloads++
	start := 0
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, name+":"+rg)
		s, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if s >= len(data) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = s
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)-s))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	if n, cut := h.cutOnce[name]; cut {
		delete(h.cutOnce, name)
		w.Write(data[start : start+n])
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(data[start:])
}

func newFake() *fakeHub {
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	return &fakeHub{
		files: map[string][]byte{
			"config.json":       []byte(`{"architectures":["LlamaForCausalLM"]}`),
			"model.safetensors": big,
			"sub/dir/notes.txt": []byte("hello"),
		},
		lfs:     map[string]bool{"model.safetensors": true},
		listed:  map[string][]byte{},
		cutOnce: map[string]int{},
	}
}

func TestPull(t *testing.T) {
	fake := newFake()
	fake.token = "secret"
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	c := &Client{Endpoint: srv.URL, Token: "secret"}
	res, err := c.Pull(context.Background(), "org/repo", "main", dir, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Downloaded) != 3 || res.Revision == "" {
		t.Fatalf("result %+v", res)
	}
	for name, want := range fake.files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: %d bytes, err %v", name, len(got), err)
		}
	}
	// A second pull downloads nothing.
	before := fake.downloads
	res, err = c.Pull(context.Background(), "org/repo", "main", dir, PullOptions{})
	if err != nil || len(res.Skipped) != 3 || fake.downloads != before {
		t.Fatalf("second pull: %+v, %v, %d downloads", res, err, fake.downloads-before)
	}
	// Without the token the gated repository is not found.
	if _, err := (&Client{Endpoint: srv.URL}).Pull(context.Background(), "org/repo", "main", t.TempDir(), PullOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no token: %v", err)
	}
}

func TestPullResumesInterruptedDownload(t *testing.T) {
	fake := newFake()
	fake.cutOnce["model.safetensors"] = 100_000
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	c := &Client{Endpoint: srv.URL}
	_, err := c.Pull(context.Background(), "org/repo", "main", dir, PullOptions{Include: []string{"*.safetensors"}})
	if err == nil {
		t.Fatal("interrupted download: no error")
	}
	part := filepath.Join(dir, "model.safetensors.part")
	st, err := os.Stat(part)
	if err != nil || st.Size() == 0 || st.Size() > 100_000 {
		t.Fatalf("part file after interruption: %v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		t.Fatal("incomplete file renamed into place")
	}
	have := st.Size()
	res, err := c.Pull(context.Background(), "org/repo", "main", dir, PullOptions{Include: []string{"*.safetensors"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("model.safetensors:bytes=%d-", have); len(fake.ranges) != 1 || fake.ranges[0] != want {
		t.Fatalf("ranges %v, want [%s]", fake.ranges, want)
	}
	if res.Bytes != int64(len(fake.files["model.safetensors"]))-have {
		t.Fatalf("resumed transfer of %d bytes, want %d", res.Bytes, int64(len(fake.files["model.safetensors"]))-have)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if string(got) != string(fake.files["model.safetensors"]) {
		t.Fatal("resumed file differs")
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatal("part file left behind")
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		t.Fatal("--include did not filter")
	}
}

func TestPullRejectsCorruptDownload(t *testing.T) {
	for _, name := range []string{"model.safetensors", "config.json"} { // LFS sha256 and git blob id
		t.Run(name, func(t *testing.T) {
			fake := newFake()
			bad := append([]byte{}, fake.files[name]...)
			bad[len(bad)/2] ^= 0xff
			fake.listed[name] = fake.files[name]
			fake.files[name] = bad
			srv := httptest.NewServer(fake)
			defer srv.Close()
			dir := t.TempDir()
			_, err := (&Client{Endpoint: srv.URL}).Pull(context.Background(), "org/repo", "main", dir, PullOptions{Include: []string{name}})
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Fatal("corrupt file renamed into place")
			}
			if _, err := os.Stat(filepath.Join(dir, name+".part")); err == nil {
				t.Fatal("corrupt part file kept")
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, r := range []string{"org/repo", "gpt2", "Org-1/name.v2_x"} {
		if err := CheckRepo(r); err != nil {
			t.Errorf("CheckRepo(%q): %v", r, err)
		}
	}
	for _, r := range []string{"", "a/b/c", "../x", "org/..", "/abs", "org/na me"} {
		if err := CheckRepo(r); err == nil {
			t.Errorf("CheckRepo(%q): no error", r)
		}
	}
	for _, n := range []string{"../etc/passwd", "/abs", "a/../../b", "a//b", "x.part", `a\b`, "./a"} {
		if err := checkFileName(n); err == nil {
			t.Errorf("checkFileName(%q): no error", n)
		}
	}
	fake := newFake()
	fake.files["../escape"] = []byte("x")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	if _, err := (&Client{Endpoint: srv.URL}).Pull(context.Background(), "org/repo", "main", t.TempDir(), PullOptions{}); !errors.Is(err, ErrBadName) {
		t.Fatalf("listing with ../escape: %v", err)
	}
}
