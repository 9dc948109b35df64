// Package server assembles the Gantry process: the store, the object
// store, request authentication, the Generative AI and Object Storage
// APIs, the base-model catalog, the job workers, health and metrics
// endpoints, and a graceful shutdown that hands running jobs back to the
// queue so that the next start resumes them.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantryml/gantry/internal/api"
	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/basemodel"
	"github.com/gantryml/gantry/internal/jobs"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/store"
	"github.com/gantryml/gantry/internal/store/open"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// Config configures a server. Listen and DataDir default to the values of
// `gantry serve`.
type Config struct {
	// Listen is the TCP address to serve on ("127.0.0.1:8080" when empty).
	Listen string
	// DataDir holds the database (SQLite), objects, base models and the
	// bootstrap OCI config ("./gantry-data" when empty).
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://...); empty means SQLite
	// in DataDir.
	DatabaseURL string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Trainer fine-tunes models; nil fails every fine-tuning job with
	// ErrNoTrainer (a model is never ACTIVE without trained weights).
	Trainer Trainer
	// InstallDefaultBaseModel writes the built-in base model into a
	// directory on first start when the catalog is empty; nil means
	// basemodel.Install (the model `gantry demo` uses).
	InstallDefaultBaseModel func(ctx context.Context, dir string) error
	// RateLimit is the requests per second each tenancy may make
	// (DefaultRateLimit when zero, no limit when negative), with bursts of
	// RateBurst (DefaultRateBurst when zero); more are answered 429.
	RateLimit float64
	RateBurst int
	// NoWorkers serves the API without running jobs (they wait in the
	// queue for a process that runs them), for API-only replicas.
	NoWorkers bool
	// NoAPI runs the job workers without the API (a worker-only process
	// of a distributed deployment, see distributed.go): it creates no
	// tenancy or key (the first API server on the database does),
	// installs no default base model and leaves the stored catalog alone;
	// it reads DATA/base-models again when a job names a base model it
	// does not know, and runs no job until DATA/objects proves shared
	// with the API servers. Listen is not used; HealthListen, when set,
	// serves /healthz, /readyz and /metrics there.
	NoAPI bool
	// HealthListen is the address of a worker-only process's health
	// endpoints; empty serves none.
	HealthListen string
	// JobLease is how long a job's claim lasts without renewal (30s when
	// zero): a worker that dies holding a job loses it to the others
	// after at most this long.
	JobLease time.Duration
	// MaxJobs caps how many jobs this process's workers run at once (0:
	// no cap beyond each cluster's unitCount), so that several worker
	// processes sharing one database each take a share of a cluster's
	// units.
	MaxJobs int
	// RetentionInterval is how often an API server purges expired retry
	// tokens and long-finished jobs (DefaultRetentionInterval when zero;
	// never when negative).
	RetentionInterval time.Duration
	// JobRetention is how long a finished job is kept
	// (DefaultJobRetention when zero). Work requests and their logs and
	// errors are kept whatever their age.
	JobRetention time.Duration
	// ShutdownTimeout bounds the wait for requests and jobs on shutdown
	// (30s when zero).
	ShutdownTimeout time.Duration
}

// Defaults of `gantry serve`.
const (
	DefaultListen  = "127.0.0.1:8080"
	DefaultDataDir = "./gantry-data"
	// DefaultBaseModelName is the catalog directory of the built-in base
	// model, the one `gantry demo` uses.
	DefaultBaseModelName = basemodel.DisplayName
)

// Server is an opened Gantry deployment, ready to Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	Store   store.Store
	Objects *objectstore.Store
	Catalog *Catalog
	Metrics *Metrics
	workers *workers
	runner  atomic.Pointer[jobs.Runner]
	// storageErr is a worker-only process's latest shared-storage check.
	storageErr atomic.Pointer[storageState]
	closeMu    sync.Once
}

// OpenStore opens the database of a data directory: PostgreSQL when
// databaseURL is set, else SQLite at DATA/gantry.db.
func OpenStore(ctx context.Context, dataDir, databaseURL string) (store.Store, error) {
	return open.Open(ctx, dataDir, databaseURL)
}

// Open prepares a server: opens the store and the object store, creates
// the first tenancy, user and key on an empty data directory (writing
// DATA/oci/config), installs the default base model when the catalog is
// empty, and loads the catalog into the store.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.NoAPI && cfg.NoWorkers {
		return nil, errors.New("a server with neither the API nor the job workers has nothing to do")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	cfg.DataDir = dataDir
	st, err := OpenStore(ctx, dataDir, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, Store: st, Metrics: NewMetrics()}
	if err := s.init(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) init(ctx context.Context) error {
	objs, err := objectstore.Open(filepath.Join(s.cfg.DataDir, "objects"))
	if err != nil {
		return err
	}
	s.Objects = objs
	if s.cfg.NoAPI {
		// Identities and the stored catalog are the API servers' to
		// write; a worker reads the catalog from the (shared) disk.
		cat, err := LoadCatalog(s.cfg.DataDir, s.log)
		if err != nil {
			return err
		}
		s.Catalog = cat
		s.workers = s.newWorkers()
		return nil
	}
	if err := auth.Bootstrap(ctx, s.Store, s.cfg.DataDir, "http://"+s.cfg.Listen); err != nil {
		return err
	}
	if err := s.writeDeploymentMarker(ctx); err != nil {
		return err
	}
	s.log.Info("OCI config for this deployment", "config", auth.ConfigPath(s.cfg.DataDir), "profile", "DEFAULT", "endpoint", "http://"+s.cfg.Listen)
	cat, err := LoadCatalog(s.cfg.DataDir, s.log)
	if err != nil {
		return err
	}
	if cat.Len() == 0 {
		install := s.cfg.InstallDefaultBaseModel
		if install == nil {
			install = basemodel.Install
		}
		dir := filepath.Join(s.cfg.DataDir, BaseModelsDir, DefaultBaseModelName)
		s.log.Info("installing the default base model", "dir", dir)
		if err := installDir(ctx, dir, install); err != nil {
			return fmt.Errorf("install default base model: %w", err)
		}
		if cat, err = LoadCatalog(s.cfg.DataDir, s.log); err != nil {
			return err
		}
	}
	if err := cat.Sync(ctx, s.Store); err != nil {
		return err
	}
	s.Catalog = cat
	s.workers = s.newWorkers()
	return nil
}

func (s *Server) newWorkers() *workers {
	return &workers{st: s.Store, objs: s.Objects, catalog: s.Catalog, trainer: s.cfg.Trainer, log: s.log,
		jobsDir: filepath.Join(s.cfg.DataDir, "jobs"), dataDir: s.cfg.DataDir}
}

// installDir runs install into a temporary sibling of dir and renames it
// into place, so a crash never leaves a half-written base model.
func installDir(ctx context.Context, dir string, install func(context.Context, string) error) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := install(ctx, tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another server on the same (shared) data directory installed
		// it first.
		if _, serr := os.Stat(filepath.Join(dir, "config.json")); serr == nil {
			return nil
		}
		return err
	}
	return nil
}

// InstallTinyBaseModel writes a small stand-in base model into dir: the
// "tiny" Llama preset (2 layers) with deterministic random weights, the
// built-in byte-level tokenizer, and a gantry.json naming it
// DefaultBaseModelName. Tests use it where the weights do not matter.
func InstallTinyBaseModel(ctx context.Context, dir string) error {
	opts := model.InitOptions{Preset: "tiny", Seed: 1}
	opts.TokenizerJSON, opts.TokenizerConfigJSON = tokenizer.ByteLevelFiles()
	tok, err := tokenizer.Parse(opts.TokenizerJSON, opts.TokenizerConfigJSON)
	if err != nil {
		return fmt.Errorf("built-in tokenizer: %w", err)
	}
	opts.VocabSize = tok.VocabSize()
	if id, ok := tok.BOS(); ok {
		opts.BOS = &id
	}
	if id, ok := tok.EOS(); ok {
		opts.EOS = &id
	}
	if err := model.Init(ctx, dir, opts); err != nil {
		return err
	}
	spec := `{"displayName": "` + DefaultBaseModelName + `", "vendor": "gantry", "version": "1"}` + "\n"
	return os.WriteFile(filepath.Join(dir, CatalogFile), []byte(spec), 0o644)
}

// Handler returns the server's HTTP routes: /20231130/... (Generative
// AI) and /n/... (Object Storage) behind request ids, logs, metrics and
// signature verification, and /healthz, /readyz and /metrics open.
func (s *Server) Handler() http.Handler {
	genai := &api.Server{
		Store:           s.Store,
		Caller:          callerOf,
		Objects:         objectChecker{objs: s.Objects, ids: s.Store},
		Logger:          s.log,
		BaseModelLayers: s.baseModelLayers,
		Notify:          s.notify,
	}
	verifier := &auth.Verifier{Keys: s.Store, OnError: api.WriteError, Logger: s.log}
	apiMux := http.NewServeMux()
	apiMux.Handle(api.APIVersion+"/", genai.Handler())
	osHandler := api.NewObjectStorageHandler(s.Objects, s.Store)
	// "/n" too: GetNamespace is GET /n/, which the Go SDK sends as /n; a
	// ServeMux redirect would make the client resend a signature for /n to /n/.
	apiMux.Handle("/n", osHandler)
	apiMux.Handle("/n/", osHandler)
	apiMux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, r, http.StatusNotFound, api.CodeNotAuthorizedOrNotFound, "no operation at "+r.Method+" "+r.URL.Path)
	}))

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	root.HandleFunc("GET /readyz", s.readyz)
	root.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := s.Metrics.Write(r.Context(), w, s.Store); err != nil {
			s.log.Warn("write metrics", "err", err)
		}
	})
	var limited http.Handler = apiMux
	if s.cfg.RateLimit >= 0 {
		rate, burst := s.cfg.RateLimit, s.cfg.RateBurst
		if rate == 0 {
			rate = DefaultRateLimit
		}
		if burst <= 0 {
			burst = DefaultRateBurst
		}
		limited = newRateLimiter(rate, burst).wrap(apiMux)
	}
	root.Handle("/", api.RequestIDMiddleware(s.observe(verifier.Wrap(limited))))
	return root
}

// baseModelLayers is Catalog.NumLayers, reading the catalog again on a
// miss: another API server on the same (shared) DATA/base-models may have
// installed and stored a base model after this one started.
func (s *Server) baseModelLayers(id string) (int, bool) {
	if n, ok := s.Catalog.NumLayers(id); ok {
		return n, true
	}
	if err := s.Catalog.Reload(s.cfg.DataDir, s.log); err != nil {
		s.log.Warn("reload base-model catalog", "err", err)
		return 0, false
	}
	return s.Catalog.NumLayers(id)
}

func callerOf(ctx context.Context) (string, string, bool) {
	p, ok := auth.Caller(ctx)
	return p.TenancyID, p.UserID, ok
}

// readyz answers 200 when the store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.Store.ListTenancies(ctx); err != nil {
		http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// observe logs each request with its id and counts it in the metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := api.WithOperationSlot(r.Context())
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		op := api.Operation(ctx)
		switch {
		case op != "":
		case rec.status == http.StatusUnauthorized:
			op = "Unauthenticated"
		case rec.status == http.StatusTooManyRequests:
			op = "Throttled"
		default:
			op = objectStorageOperation(r)
		}
		d := time.Since(start)
		s.Metrics.Observe(op, rec.status, d)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, "request", "request_id", api.RequestID(ctx), "method", r.Method, "path", r.URL.Path,
			"operation", op, "status", rec.status, "duration_ms", float64(d.Microseconds())/1000)
	})
}

// objectStorageOperation names an Object Storage request for metrics by
// method and path shape (the handler does not report its operation).
func objectStorageOperation(r *http.Request) string {
	if !strings.HasPrefix(r.URL.Path, "/n/") {
		return "unknown"
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	kind := "Namespace"
	switch {
	case len(parts) >= 5 && parts[3] == "o":
		kind = "Object"
	case len(parts) >= 4 && parts[3] == "o":
		kind = "Objects"
	case len(parts) >= 4 && parts[3] == "u":
		kind = "MultipartUpload"
	case len(parts) >= 3:
		kind = "Bucket"
	case len(parts) == 2:
		kind = "Buckets"
	}
	return "ObjectStorage" + r.Method + kind
}

// objectChecker checks dataset objects for CreateModel: the namespace
// must be the caller's tenancy's and the object must exist.
type objectChecker struct {
	objs *objectstore.Store
	ids  store.Identities
}

func (c objectChecker) ObjectExists(ctx context.Context, tenancyID, ns, bucket, name string) error {
	t, err := c.ids.GetTenancyByNamespace(ctx, ns)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.ID != tenancyID) {
		return fmt.Errorf("namespace %s: %w", ns, api.ErrObjectNotFound)
	}
	if err != nil {
		return fmt.Errorf("get tenancy of namespace %s: %w", ns, err)
	}
	_, err = c.objs.HeadObject(ctx, ns, bucket, name)
	if errors.Is(err, objectstore.ErrObjectNotFound) || errors.Is(err, objectstore.ErrBucketNotFound) || errors.Is(err, objectstore.ErrInvalidName) {
		return fmt.Errorf("%s/%s/%s: %w", ns, bucket, name, api.ErrObjectNotFound)
	}
	return err
}

// notify wakes the job runner after a job was queued or a queue grew.
func (s *Server) notify() {
	if r := s.runner.Load(); r != nil {
		r.Notify()
	}
}

// Serve serves HTTP on ln and runs the job workers until ctx is canceled
// (SIGTERM); then it stops accepting requests, lets running jobs stop and
// go back to the queue, and returns. It does not close the store.
//
// A worker-only server (Config.NoAPI) runs the job workers and serves
// only its health endpoints on ln, which may be nil (none).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.NoAPI {
		return s.serveWorkerOnly(ctx, ln)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	workDone := make(chan error, 1)
	if s.cfg.NoWorkers {
		go func() { <-workCtx.Done(); workDone <- nil }()
	} else {
		go func() { workDone <- s.runWorkers(workCtx) }()
	}

	retentionDone := make(chan struct{})
	go func() {
		defer close(retentionDone)
		s.runRetention(workCtx)
	}()
	defer func() { stopWork(); <-retentionDone }() // before the caller closes the store

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "data", s.cfg.DataDir)

	var err error
	workersDone := false
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	case werr := <-workDone:
		workersDone = true
		if ctx.Err() == nil {
			err = fmt.Errorf("job workers stopped unexpectedly: %v", werr)
		}
	}
	s.log.Info("shutting down")
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if e := srv.Shutdown(shCtx); e != nil && err == nil {
		err = fmt.Errorf("http shutdown: %w", e)
	}
	stopWork()
	if !workersDone {
		select {
		case e := <-workDone:
			if e != nil && !errors.Is(e, context.Canceled) && err == nil {
				err = e
			}
		case <-shCtx.Done():
			if err == nil {
				err = errors.New("job workers did not stop within the shutdown timeout")
			}
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the store.
func (s *Server) Close() error {
	var err error
	s.closeMu.Do(func() { err = s.Store.Close() })
	return err
}

// Run opens the server of cfg, listens on cfg.Listen (a worker-only one
// on cfg.HealthListen, if any) and serves until ctx is canceled.
func Run(ctx context.Context, cfg Config) error {
	s, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.cfg.NoAPI {
		var ln net.Listener
		if s.cfg.HealthListen != "" {
			if ln, err = net.Listen("tcp", s.cfg.HealthListen); err != nil {
				return fmt.Errorf("listen for health checks: %w", err)
			}
		}
		return s.Serve(ctx, ln)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}
