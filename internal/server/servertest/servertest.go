// Package servertest starts real Gantry servers for tests: a listening
// server on 127.0.0.1 with a fresh data directory (SQLite, or a fresh
// PostgreSQL database), its bootstrap OCI config, and oci-go-sdk clients
// signed with its key, with retries and the circuit breaker off so that
// tests see every answer as the server sent it.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/store/postgres/pgtest"
)

// Options say what kind of server to start. The zero value is a SQLite
// server with no trainer.
type Options struct {
	// Postgres runs the server on a fresh schema of the PostgreSQL at
	// $GANTRY_TEST_POSTGRES; the test is skipped when the variable is
	// unset, unless GANTRY_REQUIRE_REFERENCES=1, when it fails.
	Postgres bool
	// DataDir reuses a data directory (for restart tests); "" makes a
	// fresh temporary one.
	DataDir string
	// DatabaseURL reuses a PostgreSQL database (for restart tests).
	DatabaseURL string
	// Trainer is passed to the server (nil: fine-tuning fails as not available).
	Trainer server.Trainer
	// InstallDefaultBaseModel is passed to the server; nil installs the built-in one.
	InstallDefaultBaseModel func(ctx context.Context, dir string) error
	// RateLimit and RateBurst are passed to the server (zero: its defaults).
	RateLimit float64
	RateBurst int
	// RetentionInterval and JobRetention are passed to the server (zero:
	// its defaults).
	RetentionInterval time.Duration
	JobRetention      time.Duration
	// Logger receives the server's logs; nil discards them, unless
	// GANTRY_TEST_LOG=1, when they go to the test log.
	Logger *slog.Logger
}

// Server is a running test server. It stops when the test ends.
type Server struct {
	// BaseURL is http://127.0.0.1:PORT.
	BaseURL string
	// DataDir is the server's data directory; DATA/oci/config is its OCI config.
	DataDir string
	// DatabaseURL is the PostgreSQL database, "" for SQLite.
	DatabaseURL string
	// Server is the server itself (its Store, Objects and Catalog).
	Server *server.Server
	// Config signs requests as the bootstrap user of the first tenancy.
	Config common.ConfigurationProvider
	// TenancyID and Namespace are the first tenancy's OCID and object
	// storage namespace.
	TenancyID, Namespace string
	// GenAI and ObjectStorage are SDK clients for BaseURL signed by Config.
	GenAI         generativeai.GenerativeAiClient
	ObjectStorage objectstorage.ObjectStorageClient

	stop func()
}

// Start starts a server and registers its shutdown with t.Cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ctx := context.Background()
	dataDir := o.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	dbURL := o.DatabaseURL
	if o.Postgres && dbURL == "" {
		dbURL = NewPostgresDatabase(t)
	}
	log := o.Logger
	if log == nil {
		if os.Getenv("GANTRY_TEST_LOG") == "1" {
			log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			log = slog.New(slog.DiscardHandler)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv, err := server.Open(ctx, server.Config{
		Listen:                  ln.Addr().String(),
		DataDir:                 dataDir,
		DatabaseURL:             dbURL,
		Logger:                  log,
		Trainer:                 o.Trainer,
		InstallDefaultBaseModel: o.InstallDefaultBaseModel,
		RetentionInterval:       o.RetentionInterval,
		JobRetention:            o.JobRetention,
		ShutdownTimeout:         10 * time.Second,
		RateLimit:               o.RateLimit,
		RateBurst:               o.RateBurst,
	})
	if err != nil {
		ln.Close()
		t.Fatalf("open server: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(runCtx, ln) }()
	s := &Server{
		BaseURL:     "http://" + ln.Addr().String(),
		DataDir:     dataDir,
		DatabaseURL: dbURL,
		Server:      srv,
	}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	}
	t.Cleanup(s.stop)

	s.Config, err = auth.ConfigProvider(auth.ConfigPath(dataDir), "DEFAULT")
	if err != nil {
		t.Fatalf("bootstrap config: %v", err)
	}
	s.TenancyID, err = s.Config.TenancyOCID()
	if err != nil {
		t.Fatalf("bootstrap config: %v", err)
	}
	ten, err := srv.Store.GetTenancy(ctx, s.TenancyID)
	if err != nil {
		t.Fatalf("get bootstrap tenancy: %v", err)
	}
	s.Namespace = ten.Namespace
	s.GenAI = s.NewGenAIClient(t, s.Config)
	s.ObjectStorage = s.NewObjectStorageClient(t, s.Config)
	return s
}

// Stop shuts the server down now (it is also stopped when the test ends).
func (s *Server) Stop() { s.stop() }

// NewGenAIClient returns a Generative AI client for the server signed by p,
// with retries and the circuit breaker off.
func (s *Server) NewGenAIClient(t testing.TB, p common.ConfigurationProvider) generativeai.GenerativeAiClient {
	t.Helper()
	c, err := generativeai.NewGenerativeAiClientWithConfigurationProvider(p)
	if err != nil {
		t.Fatalf("generativeai client: %v", err)
	}
	c.Host = s.BaseURL
	configure(&c.BaseClient)
	return c
}

// NewObjectStorageClient returns an Object Storage client for the server
// signed by p, with retries and the circuit breaker off.
func (s *Server) NewObjectStorageClient(t testing.TB, p common.ConfigurationProvider) objectstorage.ObjectStorageClient {
	t.Helper()
	c, err := objectstorage.NewObjectStorageClientWithConfigurationProvider(p)
	if err != nil {
		t.Fatalf("objectstorage client: %v", err)
	}
	c.Host = s.BaseURL
	configure(&c.BaseClient)
	return c
}

func configure(c *common.BaseClient) {
	policy := common.NoRetryPolicy()
	c.Configuration.RetryPolicy = &policy
	c.Configuration.CircuitBreaker = common.NewCircuitBreaker(common.NoCircuitBreakerSetting())
}

// Identity is a tenancy with a user and an API key, and a configuration
// provider that signs as that user.
type Identity struct {
	TenancyID, UserID, Namespace string
	Config                       common.ConfigurationProvider
}

// NewTenancy creates another tenancy in the server's store with a user
// and an API key, for isolation tests.
func (s *Server) NewTenancy(t testing.TB) Identity {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ten := &core.Tenancy{ID: auth.NewOCID("tenancy"), Name: "test-" + randHex(4), Namespace: auth.NewNamespace(), TimeCreated: now}
	if err := s.Server.Store.CreateTenancy(ctx, ten); err != nil {
		t.Fatalf("create tenancy: %v", err)
	}
	return s.newUser(t, ten)
}

// NewUser adds a user with an API key to the first tenancy.
func (s *Server) NewUser(t testing.TB) Identity {
	t.Helper()
	ten, err := s.Server.Store.GetTenancy(context.Background(), s.TenancyID)
	if err != nil {
		t.Fatalf("get tenancy: %v", err)
	}
	return s.newUser(t, ten)
}

func (s *Server) newUser(t testing.TB, ten *core.Tenancy) Identity {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	u := &core.User{ID: auth.NewOCID("user"), TenancyID: ten.ID, Name: "user-" + randHex(4), TimeCreated: now}
	if err := s.Server.Store.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	k, err := auth.NewAPIKey(ten.ID, u.ID, &key.PublicKey, now)
	if err != nil {
		t.Fatalf("api key: %v", err)
	}
	if err := s.Server.Store.AddAPIKey(ctx, k); err != nil {
		t.Fatalf("add api key: %v", err)
	}
	p := common.NewRawConfigurationProvider(ten.ID, u.ID, auth.DefaultRegion, k.Fingerprint, string(auth.EncodePrivateKeyPEM(key)), nil)
	return Identity{TenancyID: ten.ID, UserID: u.ID, Namespace: ten.Namespace, Config: p}
}

// NewCompartment creates a compartment in a tenancy and returns its OCID.
func (s *Server) NewCompartment(t testing.TB, tenancyID, name string) string {
	t.Helper()
	c := &core.Compartment{ID: auth.NewOCID("compartment"), TenancyID: tenancyID, ParentID: tenancyID, Name: name, LifecycleState: "ACTIVE", TimeCreated: time.Now().UTC()}
	if err := s.Server.Store.CreateCompartment(context.Background(), c); err != nil {
		t.Fatalf("create compartment: %v", err)
	}
	return c.ID
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewPostgresDatabase returns the URL of a fresh schema on the test
// PostgreSQL ($GANTRY_TEST_POSTGRES), dropped when the test ends; the test
// is skipped without the variable, or fails when GANTRY_REQUIRE_REFERENCES=1.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	return pgtest.URL(t)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}
