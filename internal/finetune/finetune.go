// Package finetune is the server's Trainer: it runs one fine-tuning job
// of a custom model end to end. It downloads the dataset object into a
// working directory, validates it (every bad line reported on the work
// request), checks that the model and batch fit in memory, trains with
// internal/train (checkpointing so that a restarted server resumes the
// job), reports progress (percentComplete, metric log lines, the model's
// lifecycleDetails) and uploads the adapter or weights to the service's
// artifact bucket.
//
// Working files live in the job's work directory (TrainJob.WorkDir, which
// the server keeps per model and removes on DeleteModel; DATA/work/<modelID>
// when the server gives none):
//
//	dataset.jsonl   the dataset object as downloaded (atomically: temp + rename)
//	checkpoints/    train's checkpoints (every CheckpointEvery steps and each epoch end)
//	adapter/        the trained adapter, written after training, then uploaded
//
// The directory is removed when the job ends (succeeded, failed or
// canceled by DeleteModel); a shutdown or a crash keeps it so that the
// next attempt resumes from the last checkpoint.
package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/jobs"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/nn"
	"github.com/gantryml/gantry/internal/objectstore"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/tokenizer"
	"github.com/gantryml/gantry/internal/train"
)

// Defaults of a Trainer's zero fields.
const (
	DefaultCheckpointEvery = 5
	DefaultDetailsEvery    = time.Second
	// DefaultSeed seeds every job (split, batch order, adapter init,
	// dropout), so a job's result depends only on its data and config.
	DefaultSeed = 42
)

// Names inside a job's working directory.
const (
	workDir        = "work"
	datasetFile    = "dataset.jsonl"
	checkpointsDir = "checkpoints"
	adapterDir     = "adapter"
)

// Error codes reported on the work request.
const (
	CodeInvalidDataset = "InvalidDataset"
)

// Trainer fine-tunes custom models for the server (it implements
// server.Trainer). The zero value works with a server that passes the
// object store and a work directory in each TrainJob; New sets DataDir
// for the fallback work directory.
type Trainer struct {
	// DataDir is the server's data directory; a job without a WorkDir
	// works in DATA/work/<modelID>.
	DataDir string
	// Objects is the object store used when a TrainJob carries none.
	Objects *objectstore.Store
	// Threads is the number of threads a job trains with; 0 means
	// GOMAXPROCS. Training is deterministic for a fixed value, so a
	// resumed job ends as an uninterrupted one only on the same count.
	Threads int
	// Seed seeds every job; 0 means DefaultSeed.
	Seed uint64
	// CheckpointEvery is how many steps pass between checkpoints (each
	// epoch end is one too); 0 means DefaultCheckpointEvery.
	CheckpointEvery int
	// DetailsEvery bounds how often the model's lifecycleDetails and the
	// work request's percentComplete are written between logged steps;
	// 0 means DefaultDetailsEvery.
	DetailsEvery time.Duration
	// MemAvailable returns the bytes a job may use; nil reads
	// MemAvailable from /proc/meminfo.
	MemAvailable func() (int64, error)
	// Logger receives the trainer's logs when a job brings no
	// TrainJob.Logger of its own; nil discards them.
	Logger *slog.Logger
	// DownloadPause and UploadPause are for crash tests only: when
	// positive, copying the dataset into the working directory, and
	// each artifact object of at least 1 MiB into the bucket, stops this
	// long once half of its bytes are written, so that a test can kill the process at
	// a known point. New sets them from GANTRY_TEST_FINETUNE_PAUSE
	// ("download=30s,upload=30s"); zero (production) never pauses.
	DownloadPause, UploadPause time.Duration
}

// PauseEnv names the environment variable New reads DownloadPause and
// UploadPause from, for tests that kill a `gantry serve` child process.
const PauseEnv = "GANTRY_TEST_FINETUNE_PAUSE"

// New returns the trainer of the server whose data directory is dataDir,
// for `server.Config{Trainer: finetune.New(dir)}`.
func New(dataDir string) *Trainer {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	t := &Trainer{DataDir: dataDir}
	for _, kv := range strings.Split(os.Getenv(PauseEnv), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		d, err := time.ParseDuration(v)
		if err != nil {
			continue
		}
		switch k {
		case "download":
			t.DownloadPause = d
		case "upload":
			t.UploadPause = d
		}
	}
	return t
}

// Optional methods of the Progress the server passes (its work-request
// progress has them all); without them the trainer does less.
type (
	errorReporter interface {
		ReportError(ctx context.Context, code, message string)
	}
	detailsSetter interface {
		SetModelDetails(ctx context.Context, modelID, details string) error
	}
	logReader interface {
		LogMessages(ctx context.Context) ([]string, error)
	}
	namespacer interface {
		TenancyNamespace(ctx context.Context, tenancyID string) (string, error)
	}
)

// workDirOf is the working directory of a job: the server's, else
// DATA/work/<modelID>.
func (t *Trainer) workDirOf(job server.TrainJob) (string, error) {
	if job.WorkDir != "" {
		return job.WorkDir, nil
	}
	if t.DataDir == "" {
		return "", errors.New("fine-tuning: no work directory (the server gave none and the trainer has no DataDir)")
	}
	return filepath.Join(t.DataDir, workDir, job.Model.ID), nil
}

// Train runs job to the end: see the package comment. It returns the
// model's metrics, or an error whose text sums up why the job failed
// (it becomes the model's lifecycleDetails). When ctx is canceled it
// stops at the next step and returns ctx's error: on a shutdown the
// latest checkpoint stays for the next attempt; on a cancellation
// (jobs.ErrCanceled, DeleteModel) the working directory is removed.
func (t *Trainer) Train(ctx context.Context, job server.TrainJob, progress server.Progress) (server.Artifacts, error) {
	m := job.Model
	if m == nil || m.FineTuneDetails == nil {
		return server.Artifacts{}, errors.New("fine-tuning: the model has no fine-tune details")
	}
	if job.BaseModel == nil {
		return server.Artifacts{}, errors.New("fine-tuning: no base model given")
	}
	objs := job.Objects
	if objs == nil {
		objs = t.Objects
	}
	if objs == nil {
		return server.Artifacts{}, errors.New("fine-tuning: no object store to read the dataset from")
	}
	work, err := t.workDirOf(job)
	if err != nil {
		return server.Artifacts{}, err
	}
	log := job.Logger // the server's, with the job's ids
	if log == nil {
		log = t.logger().With("model", m.ID)
	}
	r := &run{t: t, job: job, objs: objs, progress: progress, work: work, log: log}
	art, err := r.run(ctx)
	switch {
	case err == nil || ctx.Err() == nil:
		// Finished or failed for good: nothing to resume.
		if rerr := os.RemoveAll(work); rerr != nil {
			r.log.Warn("remove working directory", "dir", work, "err", rerr)
		}
	case errors.Is(context.Cause(ctx), jobs.ErrCanceled):
		// DeleteModel: the server removes uploaded artifacts; the
		// working files go here.
		if rerr := os.RemoveAll(work); rerr != nil {
			r.log.Warn("remove working directory", "dir", work, "err", rerr)
		}
	}
	return art, err
}

func (t *Trainer) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// run is one attempt of one job.
type run struct {
	t        *Trainer
	job      server.TrainJob
	objs     *objectstore.Store
	progress server.Progress
	work     string
	log      *slog.Logger

	mu          sync.Mutex
	logged      map[int]bool // steps whose metric line is in the work request logs
	lastDetails time.Time
	perEpoch    int
	epochs      int
	restarted   bool // checkpoints were discarded once as not matching
}

func (r *run) run(ctx context.Context) (server.Artifacts, error) {
	m := r.job.Model
	ft := m.FineTuneDetails
	tc := ft.TrainingConfig
	if err := os.MkdirAll(r.work, 0o755); err != nil {
		return server.Artifacts{}, fmt.Errorf("fine-tuning: create working directory: %w", err)
	}
	method, err := methodOf(tc.Type)
	if err != nil {
		return server.Artifacts{}, err
	}

	r.details(ctx, "downloading the training dataset")
	dsPath, err := r.download(ctx)
	if err != nil {
		return server.Artifacts{}, err
	}

	baseDir := r.job.BaseModel.Dir
	info, err := model.Inspect(baseDir)
	if err != nil {
		return server.Artifacts{}, fmt.Errorf("fine-tuning: base model: %w", err)
	}
	tk, err := tokenizer.Load(baseDir)
	if err != nil {
		return server.Artifacts{}, fmt.Errorf("fine-tuning: base model tokenizer: %w", err)
	}
	tok := train.FromTokenizer(tk)
	maxSeq := train.DefaultMaxSeqLen
	if c := info.Config.MaxPositionEmbeddings; c > 0 {
		maxSeq = min(c, maxSeq)
	}

	r.details(ctx, "validating the training dataset")
	ds, err := r.validate(ctx, dsPath, tok, maxSeq)
	if err != nil {
		return server.Artifacts{}, err
	}

	seed := r.t.Seed
	if seed == 0 {
		seed = DefaultSeed
	}
	trainIdx, _ := train.Split(len(ds.Examples), seed, true)
	batch := tc.TrainingBatchSize
	if batch <= 0 {
		batch = train.DefaultBatchSize
	}
	longest := 0
	for i := range ds.Examples {
		longest = max(longest, ds.Examples[i].Len())
	}
	nLast := tc.NumOfLastLayers
	if nLast == 0 {
		nLast = min(train.DefaultMaxLastLayers, info.Config.NumHiddenLayers)
	}
	est := Estimate(&info.Config, info.Parameters, EstimateOptions{
		Method: method, Batch: min(batch, max(len(trainIdx), 1)), SeqLen: longest,
		LoRARank: tc.LoraR, NumLastLayers: nLast,
	})
	if err := r.checkMemory(est, min(batch, max(len(trainIdx), 1)), longest); err != nil {
		return server.Artifacts{}, err
	}
	r.perEpoch = (len(trainIdx) + batch - 1) / batch
	r.epochs = max(tc.TotalTrainingEpochs, 1)

	if err := r.loadLogged(ctx); err != nil {
		return server.Artifacts{}, err
	}

	r.details(ctx, "loading the base model")
	base, err := model.Load(baseDir)
	if err != nil {
		return server.Artifacts{}, fmt.Errorf("fine-tuning: load base model: %w", err)
	}
	defer base.Close()
	outDir := filepath.Join(r.work, adapterDir)
	opt := train.Options{
		LoopOptions: train.LoopOptions{
			Epochs:                 tc.TotalTrainingEpochs,
			LearningRate:           tc.LearningRate,
			BatchSize:              batch,
			EarlyStoppingPatience:  tc.EarlyStoppingPatience,
			EarlyStoppingThreshold: tc.EarlyStoppingThreshold,
			LogInterval:            tc.LogModelMetricsIntervalInSteps,
			Seed:                   seed,
			Shuffle:                true,
			CheckpointDir:          filepath.Join(r.work, checkpointsDir),
			CheckpointEvery:        orDefault(r.t.CheckpointEvery, DefaultCheckpointEvery),
			Resume:                 true,
			OnMetrics:              func(p train.Metrics) { r.onMetrics(ctx, p) },
			OnProgress:             func(p train.Progress) { r.onProgress(ctx, p) },
			Logger:                 r.log,
		},
		ModelDir:      baseDir,
		BaseModelName: r.job.BaseModel.Model.DisplayName,
		Dataset:       ds,
		OutDir:        outDir,
		Method:        method,
		LoRARank:      tc.LoraR,
		LoRAAlpha:     float64(tc.LoraAlpha),
		LoRADropout:   tc.LoraDropout,
		NumLastLayers: tc.NumOfLastLayers,
		MaxSeqLen:     maxSeq,
		Threads:       r.t.Threads,
	}
	r.details(ctx, "training")
	res, err := train.RunModel(ctx, &base.Config, &base.Weights, tok, opt)
	if errors.Is(err, train.ErrResumeMismatch) && !r.restarted && ctx.Err() == nil {
		// Checkpoints of another configuration (a changed trainer or
		// engine): start over, once, from a fresh base model.
		r.log.Warn("checkpoint does not match the job; training from the start", "err", err)
		r.progress.Log(ctx, "the checkpoint of an earlier attempt does not match this run; training from the start")
		if rerr := os.RemoveAll(opt.CheckpointDir); rerr != nil {
			return server.Artifacts{}, fmt.Errorf("fine-tuning: remove checkpoints: %w", rerr)
		}
		r.restarted = true
		base.Close()
		return r.run(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return server.Artifacts{}, err
		}
		return server.Artifacts{}, fmt.Errorf("fine-tuning failed: %w", err)
	}

	r.details(ctx, "uploading the trained weights")
	n, err := r.upload(ctx, outDir)
	if err != nil {
		return server.Artifacts{}, err
	}
	r.progress.Log(ctx, fmt.Sprintf("uploaded %d artifact objects to bucket %s under %s", n, server.ArtifactsBucket, server.ArtifactPrefix(m.ID)))

	mt := core.MetricsTypeTextGeneration
	if slices.Contains(r.job.BaseModel.Model.Capabilities, core.CapabilityChat) {
		mt = core.MetricsTypeChat
	}
	stop := ""
	if res.EarlyStopped {
		stop = ", stopped early"
	}
	return server.Artifacts{
		Metrics: &core.ModelMetrics{Type: mt, FinalAccuracy: res.FinalAccuracy, FinalLoss: res.FinalLoss},
		Details: fmt.Sprintf("trained %d steps in %d epochs%s on %d examples (%d held out); final validation loss %.4f, accuracy %.4f (step %d)",
			res.Steps, res.EpochsCompleted, stop, res.TrainExamples, res.ValExamples, res.FinalLoss, res.FinalAccuracy, res.BestStep),
	}, nil
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// methodOf maps an API training config type to the engine's method.
func methodOf(typ string) (nn.Method, error) {
	switch typ {
	case core.TrainingConfigLoRA, "":
		return nn.LoRA, nil
	case core.TrainingConfigTFew:
		return nn.TFew, nil
	case core.TrainingConfigVanilla:
		return nn.Vanilla, nil
	}
	return "", fmt.Errorf("fine-tuning: unknown training config type %q", typ)
}

// download copies the dataset object into the working directory, once:
// a resumed job trains on the bytes the first attempt saw. The copy
// streams (the object is never whole in memory) into a temporary file
// renamed into place when complete; a temporary file left by a killed
// attempt is removed and the copy starts over.
func (r *run) download(ctx context.Context) (string, error) {
	dst := filepath.Join(r.work, datasetFile)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	stale, _ := filepath.Glob(filepath.Join(r.work, "."+datasetFile+".tmp*"))
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return "", fmt.Errorf("fine-tuning: remove partial download: %w", err)
		}
		r.log.Info("removed the partial dataset download of an earlier attempt", "file", p)
	}
	d := r.job.Model.FineTuneDetails.Dataset
	obj, err := r.objs.OpenObject(ctx, d.Namespace, d.Bucket, d.Object)
	if err != nil {
		return "", fmt.Errorf("fine-tuning: read dataset object %s/%s/%s: %w", d.Namespace, d.Bucket, d.Object, err)
	}
	defer obj.Close()
	tmp, err := os.CreateTemp(r.work, "."+datasetFile+".tmp*")
	if err != nil {
		return "", fmt.Errorf("fine-tuning: download dataset: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, pauseReader(ctx, ctxReader{ctx, obj}, obj.Info.Size, r.t.DownloadPause))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return "", fmt.Errorf("fine-tuning: download dataset %s: %w", d.Object, err)
	}
	return dst, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// pauseReader returns r, or when pause is positive a reader that stops
// for pause (or until ctx ends) once half of size bytes were read: the
// crash tests' fixed point to kill the process at (see UploadPause).
func pauseReader(ctx context.Context, r io.Reader, size int64, pause time.Duration) io.Reader {
	if pause <= 0 {
		return r
	}
	return &pausingReader{ctx: ctx, r: r, at: size / 2, pause: pause}
}

type pausingReader struct {
	ctx    context.Context
	r      io.Reader
	n, at  int64
	pause  time.Duration
	paused bool
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if !p.paused {
		if p.n >= p.at {
			p.paused = true
			select {
			case <-p.ctx.Done():
				return 0, p.ctx.Err()
			case <-time.After(p.pause):
			}
		} else if rest := p.at - p.n; int64(len(b)) > rest {
			b = b[:rest] // stop exactly at the halfway mark
		}
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}

// validate tokenizes the dataset; a bad dataset reports each bad line as
// a work request error and fails with a summary.
func (r *run) validate(ctx context.Context, path string, tok train.Tokenizer, maxSeq int) (*train.Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fine-tuning: open dataset: %w", err)
	}
	defer f.Close()
	ds, err := train.ReadDataset(ctxReader{ctx, f}, tok, train.ReadOptions{MaxSeqLen: maxSeq})
	var de *train.DatasetError
	if errors.As(err, &de) {
		return nil, r.datasetFailure(ctx, de)
	}
	if err != nil {
		return nil, fmt.Errorf("fine-tuning: read dataset: %w", err)
	}
	return ds, nil
}

// datasetFailure reports a bad dataset: each bad line on the work
// request, and a summary as the error.
func (r *run) datasetFailure(ctx context.Context, de *train.DatasetError) error {
	obj := r.job.Model.FineTuneDetails.Dataset.Object
	if er, ok := r.progress.(errorReporter); ok {
		for _, l := range de.Lines {
			er.ReportError(ctx, CodeInvalidDataset, fmt.Sprintf("%s line %d: %s", obj, l.Line, l.Reason))
		}
		if de.Count > len(de.Lines) {
			er.ReportError(ctx, CodeInvalidDataset, fmt.Sprintf("%s: %d more bad lines not listed", obj, de.Count-len(de.Lines)))
		}
		if de.TooFew {
			er.ReportError(ctx, CodeInvalidDataset, fmt.Sprintf("%s: %d valid example(s), at least %d needed", obj, de.Examples, train.MinExamples))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid training dataset %s:", obj)
	if de.Count > 0 {
		fmt.Fprintf(&b, " %d bad line(s)", de.Count)
		var ls []string
		for _, l := range de.Lines[:min(len(de.Lines), 5)] {
			ls = append(ls, fmt.Sprint(l.Line))
		}
		more := ""
		if de.Count > 5 {
			more = ", …"
		}
		fmt.Fprintf(&b, " (line %s%s; first: %s)", strings.Join(ls, ", "), more, de.Lines[0].Reason)
	}
	if de.TooFew {
		if de.Count > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %d valid example(s), at least %d needed", de.Examples, train.MinExamples)
	}
	if de.Count > 0 {
		b.WriteString("; the work request errors list every bad line")
	}
	return errors.New(b.String())
}

// checkMemory fails a job whose estimate exceeds the memory available.
func (r *run) checkMemory(est Estimation, batch, seq int) error {
	avail := r.t.MemAvailable
	if avail == nil {
		avail = MemAvailable
	}
	have, err := avail()
	if err != nil {
		r.log.Warn("cannot read available memory; not checking the job's size", "err", err)
		return nil
	}
	if est.Total() > have {
		return fmt.Errorf("fine-tuning needs about %s of memory (weights %s, training state %s, activations for batch %d × %d tokens %s) but %s is available; use a smaller trainingBatchSize or shorter examples",
			gib(est.Total()), gib(est.Weights), gib(est.State), batch, seq, gib(est.Activations), gib(have))
	}
	return nil
}

func gib(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// MetricLine is the work request log message of one metrics point: a
// human-readable prefix, then the point as JSON (what `gantry model
// metrics` parses, from the first '{').
func MetricLine(p train.Metrics) string {
	b, _ := json.Marshal(p)
	var s strings.Builder
	fmt.Fprintf(&s, "metrics: epoch %d, step %d/%d, loss %.4f, lr %.3g", p.Epoch, p.Step, p.TotalSteps, p.TrainLoss, p.LearningRate)
	if p.ValLoss != nil && p.ValAccuracy != nil {
		fmt.Fprintf(&s, ", validation loss %.4f, accuracy %.4f", *p.ValLoss, *p.ValAccuracy)
	}
	s.WriteString(" ")
	s.Write(b)
	return s.String()
}

// parseMetricStep reads the step of a MetricLine.
func parseMetricStep(msg string) (int, bool) {
	if !strings.HasPrefix(msg, "metrics: ") {
		return 0, false
	}
	i := strings.IndexByte(msg, '{')
	if i < 0 {
		return 0, false
	}
	var p struct {
		Step *int `json:"step"`
	}
	if json.Unmarshal([]byte(msg[i:]), &p) != nil || p.Step == nil {
		return 0, false
	}
	return *p.Step, true
}

// loadLogged reads which steps earlier attempts logged, so that a resumed
// run does not log them twice.
func (r *run) loadLogged(ctx context.Context) error {
	r.logged = map[int]bool{}
	lr, ok := r.progress.(logReader)
	if !ok || r.restarted {
		// (After discarding a checkpoint every step is logged afresh.)
		return nil
	}
	msgs, err := lr.LogMessages(ctx)
	if err != nil {
		return fmt.Errorf("fine-tuning: read the work request logs: %w", err)
	}
	for _, m := range msgs {
		if s, ok := parseMetricStep(m); ok {
			r.logged[s] = true
		}
	}
	return nil
}

func (r *run) onMetrics(ctx context.Context, p train.Metrics) {
	r.mu.Lock()
	dup := r.logged[p.Step]
	r.logged[p.Step] = true
	r.mu.Unlock()
	if !dup {
		r.progress.Log(ctx, MetricLine(p))
	}
	r.report(ctx, p.Step, p.TotalSteps, p.TrainLoss, true)
}

func (r *run) onProgress(ctx context.Context, p train.Progress) {
	r.report(ctx, p.Step, p.TotalSteps, p.Loss, false)
}

// report writes percentComplete and lifecycleDetails: at every logged
// step (force) and otherwise at most once per DetailsEvery.
func (r *run) report(ctx context.Context, step, total int, loss float64, force bool) {
	every := r.t.DetailsEvery
	if every <= 0 {
		every = DefaultDetailsEvery
	}
	r.mu.Lock()
	if !force && time.Since(r.lastDetails) < every {
		r.mu.Unlock()
		return
	}
	r.lastDetails = time.Now()
	r.mu.Unlock()
	if total > 0 {
		r.progress.Percent(ctx, 100*float64(step)/float64(total))
	}
	epoch := 1
	if r.perEpoch > 0 {
		epoch = min((step-1)/r.perEpoch+1, r.epochs)
	}
	r.details(ctx, fmt.Sprintf("epoch %d/%d, step %d/%d, loss %.4f", epoch, r.epochs, step, total, loss))
}

// details sets the model's lifecycleDetails when the progress can.
func (r *run) details(ctx context.Context, s string) {
	ds, ok := r.progress.(detailsSetter)
	if !ok {
		return
	}
	if err := ds.SetModelDetails(ctx, r.job.Model.ID, s); err != nil && ctx.Err() == nil {
		r.log.Warn("set model details", "err", err)
	}
}

// upload writes the adapter files to the artifact bucket of the model's
// tenancy, under the model's prefix. Each object is replaced atomically,
// so an upload interrupted by a crash is simply redone by the next
// attempt (whose checkpoint says training is done).
func (r *run) upload(ctx context.Context, dir string) (int, error) {
	m := r.job.Model
	ns := r.job.Namespace
	if nsr, ok := r.progress.(namespacer); ok && ns == "" {
		var err error
		if ns, err = nsr.TenancyNamespace(ctx, m.TenancyID); err != nil {
			return 0, fmt.Errorf("fine-tuning: %w", err)
		}
	}
	if ns == "" {
		ns = m.FineTuneDetails.Dataset.Namespace
	}
	if _, err := r.objs.EnsureBucket(ctx, ns, server.ArtifactsBucket, m.TenancyID); err != nil {
		return 0, fmt.Errorf("fine-tuning: artifact bucket %s: %w", server.ArtifactsBucket, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("fine-tuning: read trained adapter: %w", err)
	}
	var uploaded []string
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		name := server.ArtifactPrefix(m.ID) + e.Name()
		if err := r.put(ctx, ns, filepath.Join(dir, e.Name()), name); err != nil {
			if ctx.Err() == nil {
				// The job fails: leave no partial artifacts (a canceled
				// job's are removed by DeleteModel, a shut-down job's are
				// replaced by its next attempt).
				for _, done := range uploaded {
					_ = r.objs.DeleteObject(context.WithoutCancel(ctx), ns, server.ArtifactsBucket, done, "")
				}
			}
			return len(uploaded), err
		}
		uploaded = append(uploaded, name)
	}
	return len(uploaded), nil
}

// uploadReader is f, paused halfway when the trainer's UploadPause asks
// for it and the object is at least 1 MiB.
func (r *run) uploadReader(ctx context.Context, f io.Reader, size int64) io.Reader {
	if size < 1<<20 {
		return f
	}
	return pauseReader(ctx, f, size, r.t.UploadPause)
}

func (r *run) put(ctx context.Context, ns, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fine-tuning: upload %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("fine-tuning: upload %s: %w", name, err)
	}
	ct := "application/octet-stream"
	if strings.HasSuffix(name, ".json") {
		ct = "application/json"
	}
	if _, err := r.objs.PutObject(ctx, ns, server.ArtifactsBucket, name, r.uploadReader(ctx, f, st.Size()), objectstore.PutOptions{
		ObjectAttrs: objectstore.ObjectAttrs{ContentType: ct}, Size: st.Size(),
	}); err != nil {
		return fmt.Errorf("fine-tuning: upload %s: %w", name, err)
	}
	return nil
}
