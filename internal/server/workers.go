package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/api"
	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/jobs"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/store"
)

// TrainJob is everything a Trainer needs to fine-tune one custom model.
type TrainJob struct {
	// Model is the custom model being trained (CREATING); its
	// FineTuneDetails hold the dataset and the training config with every
	// default filled in.
	Model *core.Model
	// BaseModel is the catalog entry of the model's base model, with the
	// Hugging Face directory to load.
	BaseModel *BaseModel
	// Objects is the object store: the dataset is the object named by
	// Model.FineTuneDetails.Dataset, and artifacts go to ArtifactsBucket
	// in Namespace under ArtifactPrefix(Model.ID).
	Objects *objectstore.Store
	// Namespace is the object storage namespace of the model's tenancy.
	Namespace string
	// WorkDir is a directory kept across restarts for this model's
	// checkpoints (DATA/jobs/<model OCID>); DeleteModel removes it.
	WorkDir string
	// Logger, when not nil, is the server's logger with the job's
	// attributes (job, work_request, model, attempt, and request_id: the
	// opc-request-id of the CreateModel that queued it, as in that
	// request's own log line); a Trainer logs through it.
	Logger *slog.Logger
	// Attempt counts the job's claims that did not end in a graceful
	// release, from 1: a shutdown does not count, a crash does. Either
	// way the trainer resumes from its own checkpoints when it has them.
	Attempt int
}

// Progress is how a Trainer reports while it runs; both calls are cheap
// enough for every logging step.
type Progress interface {
	// Log appends a line to the work request's logs.
	Log(ctx context.Context, message string)
	// Percent sets the work request's percentComplete (0 to 100).
	Percent(ctx context.Context, percent float64)
}

// Artifacts are what a successful training produced.
type Artifacts struct {
	// Metrics are the final validation metrics shown on the model.
	Metrics *core.ModelMetrics
	// Details, when not empty, becomes the model's lifecycleDetails.
	Details string
}

// Trainer fine-tunes models. Train blocks until training ends; when ctx
// is canceled (shutdown or DeleteModel) it stops at the next step, saves
// what it needs to resume, and returns ctx's error.
type Trainer interface {
	Train(ctx context.Context, job TrainJob, progress Progress) (Artifacts, error)
}

// ErrNoTrainer is the reason a fine-tuning job fails when the server has
// no Trainer.
var ErrNoTrainer = errors.New("fine-tuning is not available yet: this Gantry server has no training engine wired in, so no weights can be trained for this model")

// ArtifactsBucket is the bucket, in the tenancy's namespace, where a
// Trainer writes a custom model's artifacts, each under
// ArtifactPrefix(modelID); DeleteModel removes them.
const ArtifactsBucket = "gantry-models"

// ArtifactPrefix is the object name prefix of a model's artifacts.
func ArtifactPrefix(modelID string) string { return modelID + "/" }

// workers are the job handlers of the API's job kinds.
type workers struct {
	st      store.Store
	objs    *objectstore.Store
	catalog *Catalog
	trainer Trainer
	// jobsDir holds each fine-tune's WorkDir.
	jobsDir string
	// dataDir, when set, is read again for the catalog when a job names
	// a base model the catalog lacks.
	dataDir string
	log     *slog.Logger
	// pollEvery is how often model-delete checks whether the fine-tune job stopped.
	pollEvery time.Duration
}

func now() time.Time { return time.Now().UTC() }

// startWR marks a work request IN_PROGRESS.
func (w *workers) startWR(ctx context.Context, id, msg string) (*core.WorkRequest, error) {
	wr, err := w.st.GetWorkRequest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get work request %s: %w", id, err)
	}
	t := now()
	if wr.TimeStarted == nil {
		wr.TimeStarted = &t
	}
	wr.Status = core.WorkRequestInProgress
	wr.TimeUpdated = t
	if err := w.st.UpdateWorkRequest(ctx, wr); err != nil {
		return nil, fmt.Errorf("update work request %s: %w", id, err)
	}
	if msg != "" {
		if err := w.st.AppendWorkRequestLog(ctx, id, core.WorkRequestLog{Message: msg, Timestamp: t}); err != nil {
			return nil, fmt.Errorf("append work request log: %w", err)
		}
	}
	return wr, nil
}

// finishWR ends a work request in status with the resource's action and
// a log line; for FAILED, errMsg is also recorded as its error.
func finishWR(ctx context.Context, tx store.WorkRequests, wr *core.WorkRequest, status, action, msg, errCode, errMsg string) error {
	t := now()
	wr.Status = status
	if status == core.WorkRequestSucceeded {
		wr.PercentComplete = 100
	}
	if wr.TimeStarted == nil {
		wr.TimeStarted = &t
	}
	wr.TimeFinished = &t
	wr.TimeUpdated = t
	for i := range wr.Resources {
		wr.Resources[i].ActionType = action
	}
	if err := tx.UpdateWorkRequest(ctx, wr); err != nil {
		return fmt.Errorf("update work request %s: %w", wr.ID, err)
	}
	if msg != "" {
		if err := tx.AppendWorkRequestLog(ctx, wr.ID, core.WorkRequestLog{Message: msg, Timestamp: t}); err != nil {
			return fmt.Errorf("append work request log: %w", err)
		}
	}
	if errMsg != "" {
		if err := tx.AppendWorkRequestError(ctx, wr.ID, core.WorkRequestError{Code: errCode, Message: errMsg, Timestamp: t}); err != nil {
			return fmt.Errorf("append work request error: %w", err)
		}
	}
	return nil
}

// clusterCreate brings a CREATING cluster to ACTIVE.
func (w *workers) clusterCreate(ctx context.Context, j *core.Job) error {
	wr, err := w.startWR(ctx, j.WorkRequestID, "provisioning dedicated AI cluster")
	if err != nil {
		return err
	}
	return w.st.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetCluster(ctx, j.ResourceID)
		if err != nil {
			return fmt.Errorf("get cluster %s: %w", j.ResourceID, err)
		}
		if c.LifecycleState != core.ClusterCreating {
			return finishWR(ctx, tx, wr, core.WorkRequestCanceled, core.ActionRelated, "", "", "")
		}
		c.LifecycleState = core.ClusterActive
		c.LifecycleDetails = ""
		c.TimeUpdated = now()
		if err := tx.UpdateCluster(ctx, c, ""); err != nil {
			return fmt.Errorf("update cluster %s: %w", c.ID, err)
		}
		return finishWR(ctx, tx, wr, core.WorkRequestSucceeded, core.ActionCreated,
			fmt.Sprintf("dedicated AI cluster is ACTIVE with %d %s units", c.UnitCount, c.UnitShape), "", "")
	})
}

// clusterDelete ends a DELETING cluster DELETED.
func (w *workers) clusterDelete(ctx context.Context, j *core.Job) error {
	wr, err := w.startWR(ctx, j.WorkRequestID, "deleting dedicated AI cluster")
	if err != nil {
		return err
	}
	return w.st.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetCluster(ctx, j.ResourceID)
		if err != nil {
			return fmt.Errorf("get cluster %s: %w", j.ResourceID, err)
		}
		c.LifecycleState = core.ClusterDeleted
		c.LifecycleDetails = ""
		c.TimeUpdated = now()
		if err := tx.UpdateCluster(ctx, c, ""); err != nil {
			return fmt.Errorf("update cluster %s: %w", c.ID, err)
		}
		return finishWR(ctx, tx, wr, core.WorkRequestSucceeded, core.ActionDeleted, "dedicated AI cluster deleted", "", "")
	})
}

// modelDelete waits for the model's fine-tuning job to stop (DeleteModel
// asked it to), then ends the model DELETED.
func (w *workers) modelDelete(ctx context.Context, j *core.Job) error {
	wr, err := w.startWR(ctx, j.WorkRequestID, "deleting model")
	if err != nil {
		return err
	}
	every := w.pollEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	var ft *core.Job
	for {
		ft, err = w.st.GetJob(ctx, api.JobID(api.JobFineTune, j.ResourceID))
		if errors.Is(err, store.ErrNotFound) {
			ft = nil
			break
		}
		if err != nil {
			return fmt.Errorf("get fine-tune job of model %s: %w", j.ResourceID, err)
		}
		if ft.State != core.JobQueued && ft.State != core.JobRunning {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
	n, err := w.deleteArtifacts(ctx, j.TenancyID, j.ResourceID)
	if err != nil {
		return err
	}
	if w.jobsDir != "" {
		if err := os.RemoveAll(filepath.Join(w.jobsDir, j.ResourceID)); err != nil {
			return fmt.Errorf("remove work directory: %w", err)
		}
	}
	if n > 0 {
		_ = w.st.AppendWorkRequestLog(ctx, wr.ID, core.WorkRequestLog{Message: fmt.Sprintf("deleted %d artifact objects", n), Timestamp: now()})
	}
	return w.st.InTx(ctx, func(tx store.Tx) error {
		if ft != nil && ft.WorkRequestID != "" {
			// A fine-tune job canceled while queued never ran: end its
			// work request here.
			fwr, err := tx.GetWorkRequest(ctx, ft.WorkRequestID)
			if err != nil {
				return fmt.Errorf("get work request %s: %w", ft.WorkRequestID, err)
			}
			if !terminalWR(fwr.Status) {
				if err := finishWR(ctx, tx, fwr, core.WorkRequestCanceled, core.ActionRelated, "fine-tuning canceled by DeleteModel", "", ""); err != nil {
					return err
				}
			}
		}
		m, err := tx.GetModel(ctx, j.ResourceID)
		if err != nil {
			return fmt.Errorf("get model %s: %w", j.ResourceID, err)
		}
		m.LifecycleState = core.ModelDeleted
		m.LifecycleDetails = ""
		m.TimeUpdated = now()
		if err := tx.UpdateModel(ctx, m, ""); err != nil {
			return fmt.Errorf("update model %s: %w", m.ID, err)
		}
		return finishWR(ctx, tx, wr, core.WorkRequestSucceeded, core.ActionDeleted, "model deleted", "", "")
	})
}

// deleteArtifacts removes a model's objects from the artifacts bucket of
// its tenancy's namespace and returns how many there were.
func (w *workers) deleteArtifacts(ctx context.Context, tenancyID, modelID string) (int, error) {
	if w.objs == nil {
		return 0, nil
	}
	t, err := w.st.GetTenancy(ctx, tenancyID)
	if err != nil {
		return 0, fmt.Errorf("get tenancy %s: %w", tenancyID, err)
	}
	n := 0
	start := ""
	for {
		res, err := w.objs.ListObjects(ctx, t.Namespace, ArtifactsBucket, objectstore.ListOptions{Prefix: ArtifactPrefix(modelID), Start: start, Limit: 1000})
		if errors.Is(err, objectstore.ErrBucketNotFound) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("list artifacts of %s: %w", modelID, err)
		}
		for _, o := range res.Objects {
			err := w.objs.DeleteObject(ctx, t.Namespace, ArtifactsBucket, o.Name, "")
			if err != nil && !errors.Is(err, objectstore.ErrObjectNotFound) {
				return n, fmt.Errorf("delete artifact %s: %w", o.Name, err)
			}
			n++
		}
		if res.NextStartWith == "" {
			return n, nil
		}
		start = res.NextStartWith
	}
}

func terminalWR(status string) bool {
	return status == core.WorkRequestSucceeded || status == core.WorkRequestFailed || status == core.WorkRequestCanceled
}

// jobLogger is the workers' logger with a job's attributes: its ids,
// attempt, and the opc-request-id of the request that queued it.
func (w *workers) jobLogger(j *core.Job) *slog.Logger {
	log := w.log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("job", j.ID, "work_request", j.WorkRequestID, "model", j.ResourceID, "attempt", j.Attempt)
	var p api.JobPayload
	if json.Unmarshal(j.Payload, &p) == nil && p.OpcRequestID != "" {
		log = log.With("request_id", p.OpcRequestID)
	}
	return log
}

// fineTune trains a CREATING model with the Trainer, or fails it with the
// reason when there is none. A model is never ACTIVE without weights
// trained behind it.
func (w *workers) fineTune(ctx context.Context, j *core.Job) error {
	m, err := w.st.GetModel(ctx, j.ResourceID)
	if err != nil {
		return fmt.Errorf("get model %s: %w", j.ResourceID, err)
	}
	wr, err := w.st.GetWorkRequest(ctx, j.WorkRequestID)
	if err != nil {
		return fmt.Errorf("get work request %s: %w", j.WorkRequestID, err)
	}
	if m.LifecycleState != core.ModelCreating {
		// Deleted (or finished) while queued: nothing to train.
		return w.st.InTx(ctx, func(tx store.Tx) error {
			return finishWR(ctx, tx, wr, core.WorkRequestCanceled, core.ActionRelated, "fine-tuning canceled: the model is "+m.LifecycleState, "", "")
		})
	}
	if _, err := w.startWR(ctx, wr.ID, fmt.Sprintf("fine-tuning started (attempt %d)", j.Attempt)); err != nil {
		return err
	}
	base, ok := w.catalog.Get(m.BaseModelID)
	if !ok && w.dataDir != "" {
		// Installed (on a shared DATA/base-models) after this process
		// started, as a worker-only process may see it.
		if rerr := w.catalog.Reload(w.dataDir, w.logger()); rerr != nil {
			return fmt.Errorf("reload base-model catalog: %w", rerr)
		}
		base, ok = w.catalog.Get(m.BaseModelID)
	}
	var art Artifacts
	clusterGone := false
	if m.FineTuneDetails != nil {
		// DeleteDedicatedAiCluster refuses a cluster with jobs, but a
		// CreateModel racing it may still have queued one.
		c, cerr := w.st.GetCluster(ctx, m.FineTuneDetails.DedicatedAiClusterID)
		if cerr != nil && !errors.Is(cerr, store.ErrNotFound) {
			return fmt.Errorf("get cluster of model %s: %w", m.ID, cerr)
		}
		clusterGone = cerr != nil || c.LifecycleState == core.ClusterDeleting || c.LifecycleState == core.ClusterDeleted
	}
	switch {
	case clusterGone:
		err = fmt.Errorf("dedicated AI cluster %s was deleted before training started", m.FineTuneDetails.DedicatedAiClusterID)
	case !ok:
		err = fmt.Errorf("base model %s is not in this worker's catalog (%s): it was removed, or DATA/base-models is not shared with the API servers", m.BaseModelID, filepath.Join(w.dataDir, BaseModelsDir))
	case w.trainer == nil:
		err = ErrNoTrainer
	default:
		m.LifecycleDetails = "training"
		m.TimeUpdated = now()
		if uerr := w.st.UpdateModel(ctx, m, ""); uerr != nil {
			return fmt.Errorf("update model %s: %w", m.ID, uerr)
		}
		job := TrainJob{Model: m, BaseModel: base, Objects: w.objs, Attempt: j.Attempt, Logger: w.jobLogger(j)}
		t, terr := w.st.GetTenancy(ctx, m.TenancyID)
		if terr != nil {
			return fmt.Errorf("get tenancy %s: %w", m.TenancyID, terr)
		}
		job.Namespace = t.Namespace
		if w.jobsDir != "" {
			job.WorkDir = filepath.Join(w.jobsDir, m.ID)
			if merr := os.MkdirAll(job.WorkDir, 0o755); merr != nil {
				return fmt.Errorf("create work directory: %w", merr)
			}
		}
		art, err = w.trainer.Train(ctx, job, &wrProgress{st: w.st, wrID: wr.ID, log: w.log})
	}
	if ctx.Err() != nil {
		// Shutdown or cancellation: a canceled job is finished by its
		// DeleteModel; a shutdown releases the job to run again.
		if errors.Is(context.Cause(ctx), jobs.ErrCanceled) {
			if cerr := w.cancelFineTune(context.WithoutCancel(ctx), wr.ID); cerr != nil {
				return cerr
			}
		}
		return ctx.Err()
	}
	return w.st.InTx(ctx, func(tx store.Tx) error {
		cur, gerr := tx.GetModel(ctx, m.ID)
		if gerr != nil {
			return fmt.Errorf("get model %s: %w", m.ID, gerr)
		}
		wr, gerr := tx.GetWorkRequest(ctx, wr.ID)
		if gerr != nil {
			return fmt.Errorf("get work request: %w", gerr)
		}
		if cur.LifecycleState != core.ModelCreating {
			return finishWR(ctx, tx, wr, core.WorkRequestCanceled, core.ActionRelated, "fine-tuning stopped: the model is "+cur.LifecycleState, "", "")
		}
		cur.TimeUpdated = now()
		if err != nil {
			cur.LifecycleState = core.ModelFailed
			cur.LifecycleDetails = err.Error()
			if uerr := tx.UpdateModel(ctx, cur, ""); uerr != nil {
				return fmt.Errorf("update model %s: %w", cur.ID, uerr)
			}
			return finishWR(ctx, tx, wr, core.WorkRequestFailed, core.ActionFailed, "fine-tuning failed", "FineTuningFailed", err.Error())
		}
		cur.LifecycleState = core.ModelActive
		cur.LifecycleDetails = art.Details
		cur.Metrics = art.Metrics
		if uerr := tx.UpdateModel(ctx, cur, ""); uerr != nil {
			return fmt.Errorf("update model %s: %w", cur.ID, uerr)
		}
		return finishWR(ctx, tx, wr, core.WorkRequestSucceeded, core.ActionCreated, "fine-tuning finished; the model is ACTIVE", "", "")
	})
}

func (w *workers) cancelFineTune(ctx context.Context, wrID string) error {
	return w.st.InTx(ctx, func(tx store.Tx) error {
		wr, err := tx.GetWorkRequest(ctx, wrID)
		if err != nil {
			return fmt.Errorf("get work request: %w", err)
		}
		return finishWR(ctx, tx, wr, core.WorkRequestCanceled, core.ActionRelated, "fine-tuning canceled by DeleteModel", "", "")
	})
}

// wrProgress reports a trainer's progress on its work request. Besides
// Progress it has ReportError, SetModelDetails, LogMessages and
// TenancyNamespace (progress_finetune.go), which a trainer may look for
// with a type assertion.
type wrProgress struct {
	st   store.Store
	wrID string
	log  *slog.Logger
}

func (p *wrProgress) Log(ctx context.Context, msg string) {
	if err := p.st.AppendWorkRequestLog(ctx, p.wrID, core.WorkRequestLog{Message: msg, Timestamp: now()}); err != nil {
		p.log.WarnContext(ctx, "append work request log", "work_request", p.wrID, "err", err)
	}
}

// Percent records progress on an IN_PROGRESS work request; one that is
// CANCELING (or ended) keeps its status.
func (p *wrProgress) Percent(ctx context.Context, pct float64) {
	err := p.st.InTx(ctx, func(tx store.Tx) error {
		wr, err := tx.GetWorkRequest(ctx, p.wrID)
		if err != nil || wr.Status != core.WorkRequestInProgress {
			return err
		}
		wr.PercentComplete = min(max(pct, 0), 99.9)
		wr.TimeUpdated = now()
		return tx.UpdateWorkRequest(ctx, wr)
	})
	if err != nil {
		p.log.WarnContext(ctx, "update work request progress", "work_request", p.wrID, "err", err)
	}
}

// handlers maps the API's job kinds to their handlers.
func (s *Server) handlers() map[string]func(context.Context, *core.Job) error {
	return map[string]func(context.Context, *core.Job) error{
		api.JobClusterCreate: s.workers.clusterCreate,
		api.JobClusterDelete: s.workers.clusterDelete,
		api.JobModelDelete:   s.workers.modelDelete,
		api.JobFineTune:      s.workers.fineTune,
	}
}

// WorkersDir is the folder of the data directory holding the job
// runners' lock files (see jobs.Options.LockDir).
const WorkersDir = "workers"

// runWorkers runs the job runner with the API's handlers until ctx is
// done; then running jobs stop and go back to the queue.
func (s *Server) runWorkers(ctx context.Context) error {
	// DATA/workers holds each runner's lock file: a runner that finds
	// one unlocked (its process died, SIGKILL included) takes that
	// runner's jobs over at once rather than after its 30 s lease.
	if s.cfg.NoAPI {
		// A worker-only process runs nothing until it sees the API
		// servers' objects (distributed.go).
		if err := s.waitSharedStorage(ctx, time.Second); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	r := jobs.New(s.Store, jobs.Options{Logger: s.log, PollInterval: 500 * time.Millisecond, CancelCheck: 200 * time.Millisecond,
		LockDir: filepath.Join(s.cfg.DataDir, WorkersDir), Lease: s.cfg.JobLease, MaxRunning: s.cfg.MaxJobs})
	for kind, h := range s.handlers() {
		r.Register(kind, h)
	}
	s.runner.Store(r)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.workers.reportWaiting(wctx, time.Second)
	}()
	err := r.Run(ctx)
	stop()
	<-done
	return err
}

// reportWaiting logs, every period until ctx is done, on the work request
// of each fine-tune job queued behind a full cluster, "waiting for a free
// unit on cluster X (N ahead)", N being the jobs queued before it on that
// cluster: once when it starts waiting and again whenever N changes. The
// work request stays ACCEPTED with percentComplete 0 meanwhile (OCI's
// operation status WAITING is not used: a queued job has not started).
func (w *workers) reportWaiting(ctx context.Context, period time.Duration) {
	last := map[string]string{} // work request ID: the waiting line it got last
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		next, err := w.waitingLines(ctx, last)
		if err != nil && ctx.Err() == nil {
			w.logger().WarnContext(ctx, "report fine-tune jobs waiting for a cluster unit", "err", err)
		}
		if err == nil {
			last = next
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *workers) logger() *slog.Logger {
	if w.log != nil {
		return w.log
	}
	return slog.Default()
}

// waitingLines writes the waiting line of each queued fine-tune job whose
// line differs from last (the lines of the previous round) and from its
// work request's newest log message, and returns the lines of the jobs
// waiting now.
func (w *workers) waitingLines(ctx context.Context, last map[string]string) (map[string]string, error) {
	tens, err := w.st.ListTenancies(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenancies: %w", err)
	}
	queued := map[string][]*core.Job{} // cluster ID: its queued fine-tune jobs
	for _, t := range tens {
		q := store.ListQuery{TenancyID: t.ID, LifecycleState: core.ModelCreating, Limit: 1000}
		for {
			pg, err := w.st.ListModels(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("list models: %w", err)
			}
			for _, m := range pg.Items {
				if m.FineTuneDetails == nil {
					continue
				}
				j, err := w.st.GetJob(ctx, api.JobID(api.JobFineTune, m.ID))
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("get fine-tune job of model %s: %w", m.ID, err)
				}
				if j.State == core.JobQueued && j.WorkRequestID != "" {
					queued[j.Queue] = append(queued[j.Queue], j)
				}
			}
			if pg.Next == "" {
				break
			}
			q.Page = pg.Next
		}
	}
	waiting := map[string]string{}
	for cluster, js := range queued {
		c, err := w.st.GetCluster(ctx, cluster)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get cluster %s: %w", cluster, err)
		}
		running, err := w.st.CountJobs(ctx, cluster, core.JobRunning)
		if err != nil {
			return nil, fmt.Errorf("count running jobs of cluster %s: %w", cluster, err)
		}
		// The runner claims the oldest queued job first.
		slices.SortFunc(js, func(a, b *core.Job) int {
			return cmp.Or(a.TimeCreated.Compare(b.TimeCreated), strings.Compare(a.ID, b.ID))
		})
		free := max(c.UnitCount-running, 0)
		for i, j := range js[min(free, len(js)):] {
			msg := fmt.Sprintf("waiting for a free unit on cluster %s (%d ahead)", cluster, free+i)
			waiting[j.WorkRequestID] = msg
			if last[j.WorkRequestID] == msg {
				continue
			}
			// Another server on the same database, or this one before a
			// restart, may have written the line already.
			pg, err := w.st.ListWorkRequestLogs(ctx, j.WorkRequestID, store.LogQuery{Limit: 1, Desc: true})
			if err != nil {
				return nil, fmt.Errorf("list work request logs: %w", err)
			}
			if len(pg.Items) > 0 && pg.Items[0].Message == msg {
				continue
			}
			if err := w.st.AppendWorkRequestLog(ctx, j.WorkRequestID, core.WorkRequestLog{Message: msg, Timestamp: now()}); err != nil {
				return nil, fmt.Errorf("append work request log: %w", err)
			}
		}
	}
	return waiting, nil
}
