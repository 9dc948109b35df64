// Package hub downloads model repositories from a Hugging Face compatible
// hub: it lists a revision's files through the API, downloads each with
// HTTP Range resume of a .part file, verifies LFS files against their
// sha256 and other files against their git blob id, and renames each into
// place only when complete and verified.
package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// DefaultEndpoint is the hub used when neither Client.Endpoint nor
// $HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// Errors callers can branch on.
var (
	// ErrChecksum: a downloaded file's content does not match the hub's
	// sha256 (LFS) or git blob id; the partial file has been removed.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrNotFound: the repository, revision or file does not exist (or is
	// gated and no token was given).
	ErrNotFound = errors.New("not found on the hub")
	// ErrBadName: a repository id or a file name from the hub is unsafe or
	// malformed.
	ErrBadName = errors.New("bad name")
)

// Client talks to one hub. The zero value uses $HF_ENDPOINT (or
// DefaultEndpoint), $HF_TOKEN and http.DefaultClient.
type Client struct {
	Endpoint   string       // base URL, e.g. https://huggingface.co
	Token      string       // bearer token for gated or private repositories
	HTTPClient *http.Client // nil: http.DefaultClient
	Logger     *slog.Logger // nil: no logging
}

// File is one file of a repository revision as the API lists it.
type File struct {
	Name   string // path within the repository, slash-separated
	Size   int64  // -1 when the listing gave none
	SHA256 string // lowercase hex for LFS files, "" otherwise
	BlobID string // git blob sha1 (hex) for non-LFS files, "" when unknown
}

// Result reports what Pull did.
type Result struct {
	Revision   string   // the commit the API resolved, when it said
	Downloaded []string // files fetched (in full or resumed)
	Skipped    []string // files already complete
	Bytes      int64    // bytes transferred
}

func (c *Client) endpoint() string {
	if c.Endpoint != "" {
		return strings.TrimRight(c.Endpoint, "/")
	}
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		return strings.TrimRight(e, "/")
	}
	return DefaultEndpoint
}

func (c *Client) token() string {
	if c.Token != "" {
		return c.Token
	}
	return os.Getenv("HF_TOKEN")
}

func (c *Client) http() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

var repoRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CheckRepo validates a repository id (NAME or ORG/NAME).
func CheckRepo(repo string) error {
	if !repoRE.MatchString(repo) || strings.Contains(repo, "..") || len(repo) > 200 {
		return fmt.Errorf("%w: repository %q (want ORG/NAME)", ErrBadName, repo)
	}
	return nil
}

// checkFileName rejects names that could escape the output directory.
func checkFileName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) ||
		path.Clean(name) != name || name == "." || strings.HasPrefix(name, "../") || name == ".." || strings.HasSuffix(name, ".part") {
		return fmt.Errorf("%w: file name %q", ErrBadName, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return fmt.Errorf("%w: file name %q", ErrBadName, name)
		}
	}
	return nil
}

func (c *Client) get(ctx context.Context, u string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if t := c.token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	req.Header.Set("User-Agent", "gantry")
	return c.http().Do(req)
}

// List returns the files of repo at revision (a branch, tag or commit).
func (c *Client) List(ctx context.Context, repo, revision string) ([]File, string, error) {
	if err := CheckRepo(repo); err != nil {
		return nil, "", err
	}
	if revision == "" {
		revision = "main"
	}
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", c.endpoint(), repo, url.PathEscape(revision))
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list %s@%s: %w", repo, revision, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return nil, "", fmt.Errorf("list %s@%s: %w (HTTP %d)", repo, revision, ErrNotFound, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("list %s@%s: HTTP %s", repo, revision, resp.Status)
	}
	var info struct {
		SHA      string `json:"sha"`
		Siblings []struct {
			RFilename string `json:"rfilename"`
			Size      *int64 `json:"size"`
			BlobID    string `json:"blobId"`
			LFS       *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, "", fmt.Errorf("list %s@%s: bad API response: %w", repo, revision, err)
	}
	var files []File
	for _, s := range info.Siblings {
		if err := checkFileName(s.RFilename); err != nil {
			return nil, "", fmt.Errorf("list %s@%s: %w", repo, revision, err)
		}
		f := File{Name: s.RFilename, Size: -1}
		if s.Size != nil {
			f.Size = *s.Size
		}
		if s.LFS != nil {
			f.SHA256 = strings.ToLower(s.LFS.SHA256)
			f.Size = s.LFS.Size
		} else if len(s.BlobID) == 40 {
			f.BlobID = strings.ToLower(s.BlobID)
		}
		files = append(files, f)
	}
	return files, info.SHA, nil
}

// PullOptions narrow what Pull downloads.
type PullOptions struct {
	// Include, when not empty, keeps only files whose name or base name
	// matches one of these path.Match patterns (e.g. "*.json").
	Include []string
}

func (o PullOptions) wants(name string) bool {
	if len(o.Include) == 0 {
		return true
	}
	for _, p := range o.Include {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(name)); ok {
			return true
		}
	}
	return false
}

// Pull downloads every file of repo at revision into dir, skipping files
// already complete there and resuming partial (.part) downloads.
func (c *Client) Pull(ctx context.Context, repo, revision, dir string, opts PullOptions) (*Result, error) {
	if revision == "" {
		revision = "main"
	}
	files, sha, err := c.List(ctx, repo, revision)
	if err != nil {
		return nil, err
	}
	res := &Result{Revision: sha}
	// Download from the resolved commit when the API gave one, so that all
	// files come from the same snapshot.
	rev := revision
	if sha != "" {
		rev = sha
	}
	for _, f := range files {
		if !opts.wants(f.Name) {
			continue
		}
		n, skipped, err := c.download(ctx, repo, rev, dir, f)
		res.Bytes += n
		if err != nil {
			return res, err
		}
		if skipped {
			res.Skipped = append(res.Skipped, f.Name)
		} else {
			res.Downloaded = append(res.Downloaded, f.Name)
		}
	}
	return res, nil
}

// newHash returns the hash f is verified with and the expected sum.
func newHash(f File) (hash.Hash, string) {
	switch {
	case f.SHA256 != "":
		return sha256.New(), f.SHA256
	case f.BlobID != "" && f.Size >= 0:
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", f.Size)
		return h, f.BlobID
	}
	return nil, ""
}

// complete reports whether path already holds f (size and checksum agree).
func complete(path string, f File) bool {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || (f.Size >= 0 && st.Size() != f.Size) {
		return false
	}
	h, want := newHash(f)
	if h == nil {
		return f.Size >= 0
	}
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	if _, err := io.Copy(h, fh); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == want
}

// download fetches one file into dir, resuming dir/name.part.
func (c *Client) download(ctx context.Context, repo, rev, dir string, f File) (int64, bool, error) {
	final := filepath.Join(dir, filepath.FromSlash(f.Name))
	if complete(final, f) {
		c.log().Info("hub: already complete", "file", f.Name)
		return 0, true, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return 0, false, fmt.Errorf("download %s: %w", f.Name, err)
	}
	part := final + ".part"
	pf, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, false, fmt.Errorf("download %s: %w", f.Name, err)
	}
	defer pf.Close()
	have, err := pf.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, false, fmt.Errorf("download %s: %w", f.Name, err)
	}
	if f.Size >= 0 && have > f.Size {
		if err := pf.Truncate(0); err != nil {
			return 0, false, fmt.Errorf("download %s: %w", f.Name, err)
		}
		have = 0
	}
	var transferred int64
	if f.Size < 0 || have < f.Size {
		u := fmt.Sprintf("%s/%s/resolve/%s/%s", c.endpoint(), repo, url.PathEscape(rev), escapePath(f.Name))
		hdr := http.Header{}
		if have > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := c.get(ctx, u, hdr)
		if err != nil {
			return 0, false, fmt.Errorf("download %s: %w", f.Name, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && have > 0:
			if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
				return 0, false, fmt.Errorf("download %s: server answered range %q to a request from byte %d", f.Name, resp.Header.Get("Content-Range"), have)
			}
			c.log().Info("hub: resuming", "file", f.Name, "from", have)
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
			// The part file may already hold everything; verify below.
		case resp.StatusCode == http.StatusOK:
			if _, err := pf.Seek(0, io.SeekStart); err != nil {
				return 0, false, err
			}
			if err := pf.Truncate(0); err != nil {
				return 0, false, fmt.Errorf("download %s: %w", f.Name, err)
			}
			have = 0
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return 0, false, fmt.Errorf("download %s: %w (HTTP %d)", f.Name, ErrNotFound, resp.StatusCode)
		default:
			return 0, false, fmt.Errorf("download %s: HTTP %s", f.Name, resp.Status)
		}
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			// The linked etag of an LFS file is its sha256: prefer the
			// listing's, but catch a listing that lacked it.
			if f.SHA256 == "" {
				if e := strings.Trim(strings.TrimPrefix(resp.Header.Get("X-Linked-Etag"), "W/"), `"`); len(e) == 64 {
					f.SHA256 = strings.ToLower(e)
				}
			}
			body := io.Reader(resp.Body)
			if f.Size >= 0 {
				body = io.LimitReader(resp.Body, f.Size-have+1)
			}
			n, err := io.Copy(pf, body)
			transferred = n
			if err != nil {
				return transferred, false, fmt.Errorf("download %s: interrupted after %d bytes (run again to resume): %w", f.Name, have+n, err)
			}
		}
	}
	if err := pf.Sync(); err != nil {
		return transferred, false, fmt.Errorf("download %s: %w", f.Name, err)
	}
	size, _ := pf.Seek(0, io.SeekEnd)
	if f.Size >= 0 && size != f.Size {
		if size > f.Size {
			pf.Close()
			os.Remove(part)
		}
		return transferred, false, fmt.Errorf("download %s: got %d bytes, want %d (run again to resume)", f.Name, size, f.Size)
	}
	if h, want := newHash(f); h != nil {
		if _, err := pf.Seek(0, io.SeekStart); err != nil {
			return transferred, false, err
		}
		if _, err := io.Copy(h, pf); err != nil {
			return transferred, false, fmt.Errorf("download %s: %w", f.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			pf.Close()
			os.Remove(part)
			return transferred, false, fmt.Errorf("download %s: %w: content hashes to %s, hub says %s", f.Name, ErrChecksum, got, want)
		}
	}
	if err := pf.Close(); err != nil {
		return transferred, false, fmt.Errorf("download %s: %w", f.Name, err)
	}
	if err := os.Rename(part, final); err != nil {
		return transferred, false, fmt.Errorf("download %s: %w", f.Name, err)
	}
	c.log().Info("hub: downloaded", "file", f.Name, "bytes", size)
	return transferred, false, nil
}

// rangeStart parses the first byte of a "bytes a-b/n" Content-Range.
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

func escapePath(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
