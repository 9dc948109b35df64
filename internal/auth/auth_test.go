package auth

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/postgres"
	"github.com/gantryml/gantry/internal/store/postgres/pgtest"
	"github.com/gantryml/gantry/internal/store/sqlite"
	"github.com/oracle/oci-go-sdk/v65/common"
)

// memKeys is an in-memory Identities for tests.
type memKeys struct {
	mu    sync.Mutex
	tens  []*core.Tenancy
	users []*core.User
	keys  []*core.APIKey
	store.Identities
}

func (m *memKeys) GetAPIKey(_ context.Context, t, u, fp string) (*core.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.TenancyID == t && k.UserID == u && k.Fingerprint == fp {
			return k, nil
		}
	}
	return nil, fmt.Errorf("key %s: %w", fp, store.ErrNotFound)
}
func (m *memKeys) ListTenancies(context.Context) ([]*core.Tenancy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*core.Tenancy(nil), m.tens...), nil
}
func (m *memKeys) CreateTenancy(_ context.Context, t *core.Tenancy) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tens = append(m.tens, t)
	return nil
}
func (m *memKeys) CreateUser(_ context.Context, u *core.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users = append(m.users, u)
	return nil
}
func (m *memKeys) AddAPIKey(_ context.Context, k *core.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

var (
	testKeyOnce sync.Once
	testKeys    [2]*rsa.PrivateKey
)

func keys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	testKeyOnce.Do(func() {
		for i := range testKeys {
			k, err := GenerateKey()
			if err != nil {
				panic(err)
			}
			testKeys[i] = k
		}
	})
	return testKeys[0], testKeys[1]
}

// setup returns a server that echoes the caller and the body, the key
// store behind it and a signer for its one key.
func setup(t *testing.T, now func() time.Time) (*httptest.Server, *Signer) {
	t.Helper()
	k, _ := keys(t)
	ks := &memKeys{}
	ak, err := NewAPIKey("ocid1.tenancy.oc1..t", "ocid1.user.oc1..u", &k.PublicKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ks.AddAPIKey(context.Background(), ak)
	h := Middleware(ks, now, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := Caller(r.Context())
		if !ok {
			t.Error("no caller in context")
		}
		body, err := io.ReadAll(r.Body)
		if errors.Is(err, ErrBodyHashMismatch) {
			WriteErrorJSON(w, 401, "NotAuthenticated", err.Error())
			return
		}
		fmt.Fprintf(w, "%s %s %d", p.TenancyID, p.UserID, len(body))
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, &Signer{KeyID: ak.TenancyID + "/" + ak.UserID + "/" + ak.Fingerprint, Key: k}
}

func TestVerify(t *testing.T) {
	now := time.Now()
	srv, good := setup(t, func() time.Time { return now })
	_, otherKey := keys(t)
	big := bytes.Repeat([]byte("x"), maxBufferedBody+10)
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		sign   func(r *http.Request) error
		want   int
	}{
		{"get", "GET", "/n/?a=b%20c", nil, good.Sign, 200},
		{"post json", "POST", "/20231130/models", []byte(`{"a":1}`), good.Sign, 200},
		{"x-date", "GET", "/x", nil, (&Signer{KeyID: good.KeyID, Key: good.Key, XDate: true}).Sign, 200},
		{"put object unsigned body", "PUT", "/n/ns/b/bk/o/a/b.txt", []byte("data"), (&Signer{KeyID: good.KeyID, Key: good.Key, ExcludeBody: true}).Sign, 200},
		{"post unsigned body", "POST", "/20231130/models", []byte("{}"), (&Signer{KeyID: good.KeyID, Key: good.Key, ExcludeBody: true}).Sign, 401},
		{"no authorization", "GET", "/x", nil, func(*http.Request) error { return nil }, 401},
		{"wrong key", "GET", "/x", nil, (&Signer{KeyID: good.KeyID, Key: otherKey}).Sign, 401},
		{"unknown key id", "GET", "/x", nil, (&Signer{KeyID: "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/00:11", Key: good.Key}).Sign, 401},
		{"bad key id", "GET", "/x", nil, (&Signer{KeyID: "nonsense", Key: good.Key}).Sign, 401},
		{"old date", "GET", "/x", nil, (&Signer{KeyID: good.KeyID, Key: good.Key, Now: func() time.Time { return now.Add(-6 * time.Minute) }}).Sign, 401},
		{"future date", "GET", "/x", nil, (&Signer{KeyID: good.KeyID, Key: good.Key, Now: func() time.Time { return now.Add(6 * time.Minute) }}).Sign, 401},
		{"date within window", "GET", "/x", nil, (&Signer{KeyID: good.KeyID, Key: good.Key, Now: func() time.Time { return now.Add(-4 * time.Minute) }}).Sign, 200},
		{"tampered path", "GET", "/x", nil, func(r *http.Request) error {
			if err := good.Sign(r); err != nil {
				return err
			}
			r.URL.Path = "/y"
			return nil
		}, 401},
		{"tampered body", "POST", "/20231130/models", []byte(`{"a":1}`), func(r *http.Request) error {
			if err := good.Sign(r); err != nil {
				return err
			}
			r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
			return nil
		}, 401},
		{"tampered big body", "POST", "/20231130/models", big, func(r *http.Request) error {
			if err := good.Sign(r); err != nil {
				return err
			}
			bad := bytes.Clone(big)
			bad[len(bad)-1] = 'y'
			r.Body = io.NopCloser(bytes.NewReader(bad))
			return nil
		}, 401},
		{"big body", "POST", "/20231130/models", big, good.Sign, 200},
		{"date not signed", "GET", "/x", nil, func(r *http.Request) error {
			if err := good.Sign(r); err != nil {
				return err
			}
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), `headers="date `, `headers="`, 1))
			return nil
		}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
			}
			r, err := http.NewRequest(c.method, srv.URL+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.sign(r); err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, got)
			}
			if c.want == 200 {
				want := fmt.Sprintf("ocid1.tenancy.oc1..t ocid1.user.oc1..u %d", len(c.body))
				if string(got) != want {
					t.Fatalf("body %q, want %q", got, want)
				}
			} else if !strings.Contains(string(got), `"code":"NotAuthenticated"`) {
				t.Fatalf("body %s has no NotAuthenticated code", got)
			}
		})
	}
}

// TestGoSDKSigner checks the verifier against the oci-go-sdk's own signer,
// for a GET, a JSON POST and a PutObject-style unsigned body.
func TestGoSDKSigner(t *testing.T) {
	dir := t.TempDir()
	ks := openSQLite(t, dir)
	if err := Bootstrap(context.Background(), ks, dir, "http://example"); err != nil {
		t.Fatal(err)
	}
	provider, err := ConfigProvider(ConfigPath(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	profile, err := ReadConfig(ConfigPath(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Middleware(ks, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := Caller(r.Context())
		io.WriteString(w, p.UserID)
	})))
	defer srv.Close()
	for _, c := range []struct {
		method, path, body string
		signer             common.HTTPRequestSigner
	}{
		{"GET", "/n/?compartmentId=ocid1.x", "", common.DefaultRequestSigner(provider)},
		{"DELETE", "/n/ns/b/bucket/o/a%2Fb", "", common.DefaultRequestSigner(provider)},
		{"POST", "/20231130/models", `{"x":"y"}`, common.DefaultRequestSigner(provider)},
		{"PUT", "/n/ns/b/bucket/o/obj", "raw bytes", common.RequestSignerExcludeBody(provider)},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r, _ := http.NewRequest(c.method, srv.URL+c.path, body)
		r.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		if c.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if err := c.signer.Sign(r); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != profile.User {
			t.Errorf("%s %s: status %d body %s", c.method, c.path, resp.StatusCode, got)
		}
	}
}

// openSQLite opens a SQLite store in dir, closed when the test ends.
func openSQLite(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// identities reads a store's tenancies and their users.
func identities(t *testing.T, st store.Store) ([]*core.Tenancy, []*core.User) {
	t.Helper()
	ctx := context.Background()
	tens, err := st.ListTenancies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []*core.User
	for _, ten := range tens {
		us, err := st.ListUsers(ctx, ten.ID)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, us...)
	}
	return tens, users
}

// TestBootstrapConcurrent: servers bootstrapping one empty database and
// data directory at once (each with its own connections, as separate
// processes have) create exactly one tenancy, user and key, and the
// config file they leave names them.
func TestBootstrapConcurrent(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			open := func() store.Store { return openSQLite(t, dir) }
			if driver == "postgres" {
				url := pgtest.URL(t)
				open = func() store.Store {
					st, err := postgres.Open(t.Context(), url)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { st.Close() })
					return st
				}
			}
			const n = 6
			stores := make([]store.Store, n)
			for i := range stores {
				stores[i] = open()
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			gate := make(chan struct{})
			for i, st := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					errs[i] = Bootstrap(context.Background(), st, dir, "http://example")
				}()
			}
			close(gate)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("server %d: %v", i, err)
				}
			}
			tens, users := identities(t, stores[0])
			if len(tens) != 1 || len(users) != 1 {
				t.Fatalf("%d servers bootstrapping at once made %d tenancies and %d users, want 1 and 1", n, len(tens), len(users))
			}
			p, err := ReadConfig(ConfigPath(dir), "")
			if err != nil {
				t.Fatal(err)
			}
			if p.Tenancy != tens[0].ID || p.User != users[0].ID {
				t.Errorf("config names tenancy %s user %s; the store has %s and %s", p.Tenancy, p.User, tens[0].ID, users[0].ID)
			}
			k, err := stores[n-1].GetAPIKey(context.Background(), p.Tenancy, p.User, p.Fingerprint)
			if err != nil {
				t.Fatalf("the config's key is not in the store: %v", err)
			}
			pemKey, err := os.ReadFile(p.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			priv, err := ParsePrivateKeyPEM(pemKey)
			if err != nil {
				t.Fatal(err)
			}
			if fp, err := Fingerprint(&priv.PublicKey); err != nil || fp != k.Fingerprint {
				t.Errorf("key.pem's fingerprint %s (%v), the stored key's %s", fp, err, k.Fingerprint)
			}
		})
	}
}

func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	ks := openSQLite(t, dir)
	ctx := context.Background()
	if err := Bootstrap(ctx, ks, dir, "http://127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	tens, users := identities(t, ks)
	if len(tens) != 1 || len(users) != 1 {
		t.Fatalf("bootstrap stored %d tenancies, %d users", len(tens), len(users))
	}
	if tens[0].Namespace == "" || !strings.HasPrefix(tens[0].ID, "ocid1.tenancy.oc1..") {
		t.Errorf("tenancy %+v", tens[0])
	}
	st, err := os.Stat(KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, want 0600", st.Mode().Perm())
	}
	p, err := ReadConfig(ConfigPath(dir), "DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if p.User != users[0].ID || p.Tenancy != tens[0].ID || !filepath.IsAbs(p.KeyFile) || p.Region == "" {
		t.Errorf("config profile %+v does not match the store", p)
	}
	if _, err := ks.GetAPIKey(ctx, p.Tenancy, p.User, p.Fingerprint); err != nil {
		t.Errorf("the config's key is not in the store: %v", err)
	}
	// A second start keeps everything.
	before, _ := os.ReadFile(ConfigPath(dir))
	if err := Bootstrap(ctx, ks, dir, "http://127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(ConfigPath(dir))
	if tens, _ := identities(t, ks); len(tens) != 1 || !bytes.Equal(before, after) {
		t.Error("second Bootstrap changed the deployment")
	}
	// The SDK reads the config.
	prov, err := ConfigProvider(ConfigPath(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := prov.KeyID()
	if err != nil || id != p.Tenancy+"/"+p.User+"/"+p.Fingerprint {
		t.Errorf("SDK keyId %q, %v", id, err)
	}
}

// TestFingerprintOpenSSL compares Fingerprint with what openssl computes
// (as OCI's documentation does it), when openssl is installed.
func TestFingerprintOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	k, _ := keys(t)
	path := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(path, EncodePrivateKeyPEM(k), 0o600)
	out, err := exec.Command("sh", "-c", "openssl rsa -pubout -outform DER -in "+path+" 2>/dev/null | openssl md5 -c").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(out))
	if i := strings.LastIndex(want, " "); i >= 0 {
		want = want[i+1:]
	}
	got, err := Fingerprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Fingerprint %s, openssl %s", got, want)
	}
}

func TestParseAuthorization(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`Signature version="1",keyId="a/b/c",algorithm="rsa-sha256",headers="date",signature="YWJj"`, true},
		{`Signature keyId="a/b/c",signature="YWJj=="`, true},
		{`Bearer xyz`, false},
		{`Signature keyId=a,signature="x"`, false},
		{`Signature keyId="a`, false},
		{`Signature signature="x"`, false},
		{`Signature keyId="a",keyId="b",signature="x"`, false},
	} {
		_, err := ParseAuthorization(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseAuthorization(%q) error %v, want ok=%v", c.in, err, c.ok)
		}
	}
}

func TestObjectStorageBodyExempt(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"PUT", "/n/ns/b/bk/o/name", true},
		{"PUT", "/n/ns/b/bk/o/a/b/c", true},
		{"PUT", "/n/ns/b/bk/u/name", true},
		{"POST", "/n/ns/b/bk/u/name", false},
		{"PUT", "/n/ns/b/bk/o/", false},
		{"PUT", "/20231130/models/x", false},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if got := ObjectStorageBodyExempt(r); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

// BenchmarkVerify measures verifying one signed GET (key lookup in memory,
// PEM parse, RSA-2048 PKCS#1 v1.5 verification).
func BenchmarkVerify(b *testing.B) {
	k, _ := keys(nil)
	ks := &memKeys{}
	ak, _ := NewAPIKey("t", "u", &k.PublicKey, time.Now())
	ks.AddAPIKey(context.Background(), ak)
	v := &Verifier{Keys: ks}
	s := &Signer{KeyID: "t/u/" + ak.Fingerprint, Key: k}
	r := httptest.NewRequest("GET", "http://example/20231130/models?compartmentId=x", nil)
	if err := s.Sign(r); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, status, msg := v.Verify(r); status != 0 {
			b.Fatal(msg)
		}
	}
}

// FuzzParseAuthorization checks the Authorization parser never panics and
// that what it accepts has a keyId and a signature.
func FuzzParseAuthorization(f *testing.F) {
	f.Add(`Signature version="1",keyId="a/b/c",algorithm="rsa-sha256",headers="date",signature="YWJj"`)
	f.Add(`Signature keyId="",signature=""`)
	f.Add(`Signature ,,,keyId="a"=,signature="x"`)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := ParseAuthorization(h)
		if err == nil && (p["keyId"] == "" || p["signature"] == "") {
			t.Fatalf("accepted %q without keyId or signature", h)
		}
	})
}
