package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/gantryml/gantry/internal/basemodel"
	"github.com/gantryml/gantry/internal/finetune"
	"github.com/gantryml/gantry/internal/server"
)

// runServe is `gantry serve`: the API server and the job workers, or
// either alone (--workers=false: API only; --api=false: a worker-only
// process of a distributed deployment).
func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry serve", flag.ContinueOnError)
	listen := fs.String("listen", server.DefaultListen, "address to serve HTTP on")
	data := fs.String("data", server.DefaultDataDir, "data directory (database, objects, base models, OCI config)")
	dbURL := fs.String("database-url", "", "PostgreSQL URL (postgres://...); empty uses SQLite in the data directory")
	workers := fs.Bool("workers", true, "run the job workers in this process (false: serve the API only)")
	apiOn := fs.Bool("api", true, "serve the API (false: a worker-only process: no API listener, no bootstrap; needs the API servers' database and a shared DATA/objects and DATA/base-models)")
	healthListen := fs.String("health-listen", "", "with --api=false: address to serve /healthz, /readyz and /metrics on (empty: none)")
	jobLease := fs.Duration("job-lease", 30*time.Second, "how long a job's claim lasts without renewal; a dead worker's jobs move to another after this long")
	maxJobs := fs.Int("max-jobs", 0, "most jobs this process runs at once (0: no cap beyond each cluster's unitCount); with several worker processes on one database, each takes a share of a cluster's units")
	jobRetention := fs.Duration("job-retention", server.DefaultJobRetention, "how long finished jobs are kept before the hourly sweep deletes them (work requests, their logs and errors are kept)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if *healthListen != "" && *apiOn {
		return fmt.Errorf("serve: --health-listen is for worker-only processes (--api=false); the API listener serves /healthz")
	}
	if !*apiOn {
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "listen" {
				err = fmt.Errorf("serve: --listen is the API's address; a worker-only process (--api=false) serves health checks on --health-listen")
			}
		})
		if err != nil {
			return err
		}
	}
	if *jobLease < time.Second {
		return fmt.Errorf("serve: --job-lease must be at least 1s, got %v", *jobLease)
	}
	if *maxJobs < 0 {
		return fmt.Errorf("serve: --max-jobs must be 0 (no cap) or more, got %d", *maxJobs)
	}
	if *jobRetention < time.Hour {
		return fmt.Errorf("serve: --job-retention must be at least 1h, got %v", *jobRetention)
	}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(os.Stderr, nil)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, nil)
	default:
		return fmt.Errorf("serve: --log-format must be text or json, got %q", *logFormat)
	}
	log := slog.New(h)
	trainer := finetune.New(*data)
	trainer.Logger = log
	return server.Run(ctx, server.Config{Listen: *listen, DataDir: *data, DatabaseURL: *dbURL, Logger: log, NoWorkers: !*workers,
		NoAPI: !*apiOn, HealthListen: *healthListen, JobLease: *jobLease, MaxJobs: *maxJobs, JobRetention: *jobRetention, Trainer: trainer, InstallDefaultBaseModel: basemodel.Install})
}

// runAdmin is `gantry admin`: identities in a data directory's store.
func runAdmin(ctx context.Context, args []string) error {
	return dispatch(ctx, "gantry admin", map[string]command{
		"tenancy":     {"tenancy create --name N", runAdminTenancy},
		"user":        {"user create --name N [--tenancy ID]", runAdminUser},
		"key":         {"key add --user ID --public-key FILE", runAdminKey},
		"compartment": {"compartment create --name N [--tenancy ID] [--parent ID] [--description D]", runAdminCompartment},
	}, args)
}

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	fs          *flag.FlagSet
	data, dbURL *string
}

func newAdminFlags(name string) adminFlags {
	fs := flag.NewFlagSet("gantry admin "+name, flag.ContinueOnError)
	return adminFlags{
		fs:    fs,
		data:  fs.String("data", server.DefaultDataDir, "data directory"),
		dbURL: fs.String("database-url", "", "PostgreSQL URL; empty uses SQLite in the data directory"),
	}
}

// withAdmin parses args after the verb and runs fn on the store.
func (f adminFlags) run(ctx context.Context, verb string, args []string, fn func(*server.Admin) (any, error)) error {
	if len(args) == 0 || args[0] != verb {
		return fmt.Errorf("usage: %s %s [flags]", f.fs.Name(), verb)
	}
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", f.fs.Name(), f.fs.Args())
	}
	st, err := server.OpenStore(ctx, *f.data, *f.dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := fn(&server.Admin{Store: st})
	if err != nil {
		return err
	}
	return printJSON(os.Stdout, v)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"data": v})
}

func runAdminTenancy(ctx context.Context, args []string) error {
	f := newAdminFlags("tenancy")
	name := f.fs.String("name", "", "tenancy name")
	return f.run(ctx, "create", args, func(a *server.Admin) (any, error) {
		t, err := a.CreateTenancy(ctx, *name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"id": t.ID, "name": t.Name, "namespace": t.Namespace}, nil
	})
}

func runAdminUser(ctx context.Context, args []string) error {
	f := newAdminFlags("user")
	name := f.fs.String("name", "", "user name")
	tenancy := f.fs.String("tenancy", "", "tenancy OCID (default: the only tenancy)")
	return f.run(ctx, "create", args, func(a *server.Admin) (any, error) {
		u, err := a.CreateUser(ctx, *tenancy, *name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"id": u.ID, "tenancyId": u.TenancyID, "name": u.Name}, nil
	})
}

func runAdminKey(ctx context.Context, args []string) error {
	f := newAdminFlags("key")
	user := f.fs.String("user", "", "user OCID")
	pubFile := f.fs.String("public-key", "", "PEM file of the RSA public key")
	return f.run(ctx, "add", args, func(a *server.Admin) (any, error) {
		if *user == "" || *pubFile == "" {
			return nil, fmt.Errorf("usage: gantry admin key add --user ID --public-key FILE")
		}
		pem, err := os.ReadFile(*pubFile)
		if err != nil {
			return nil, err
		}
		k, err := a.AddKey(ctx, *user, pem)
		if err != nil {
			return nil, err
		}
		return map[string]any{"tenancyId": k.TenancyID, "userId": k.UserID, "fingerprint": k.Fingerprint}, nil
	})
}

func runAdminCompartment(ctx context.Context, args []string) error {
	f := newAdminFlags("compartment")
	name := f.fs.String("name", "", "compartment name")
	tenancy := f.fs.String("tenancy", "", "tenancy OCID (default: the only tenancy)")
	parent := f.fs.String("parent", "", "parent compartment OCID (default: the tenancy's root)")
	desc := f.fs.String("description", "", "description")
	return f.run(ctx, "create", args, func(a *server.Admin) (any, error) {
		c, err := a.CreateCompartment(ctx, *tenancy, *parent, *name, *desc)
		if err != nil {
			return nil, err
		}
		return map[string]any{"id": c.ID, "tenancyId": c.TenancyID, "parentId": c.ParentID, "name": c.Name}, nil
	})
}
