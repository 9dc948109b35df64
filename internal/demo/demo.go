// Package demo runs Gantry's whole fine-tuning flow in one process, offline:
// it starts a server on a loopback port with a temporary data directory
// (which installs the built-in base model), and then, only through the
// OCI Go SDK with the key the server bootstrapped, uploads the bundled
// number-words dataset, creates a fine-tuning cluster, fine-tunes a
// custom model with LoRA while showing its progress, reads the final
// metrics, downloads the adapter and answers held-out prompts with the
// base model and with the fine-tuned one side by side.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/oracle/oci-go-sdk/v65/objectstorage/transfer"

	"github.com/gantryml/gantry/examples"
	"github.com/gantryml/gantry/internal/auth"
	"github.com/gantryml/gantry/internal/basemodel"
	"github.com/gantryml/gantry/internal/client"
	"github.com/gantryml/gantry/internal/finetune"
	"github.com/gantryml/gantry/internal/model"
	"github.com/gantryml/gantry/internal/peft"
	"github.com/gantryml/gantry/internal/server"
	"github.com/gantryml/gantry/internal/tokenizer"
)

// Defaults of the demo's fine-tuning, chosen so that the improvement shows
// within a few minutes on 2 cores: more epochs and a higher learning rate
// than OCI's LoRA defaults (3 epochs, 0.0002), and a larger rank.
const (
	DefaultEpochs       = 30
	DefaultLearningRate = 0.003
	DefaultBatchSize    = 8
	DefaultLoraR        = 16
	DefaultLoraAlpha    = 32
	DefaultLoraDropout  = 0.0
	DefaultLogInterval  = 10
	DefaultMaxTokens    = 40
)

// Names of the demo's resources.
const (
	DatasetBucket = "gantry-demo"
	DatasetObject = "number-words.jsonl"
)

// Options configure Run. Zero fields take the defaults above.
type Options struct {
	// DataDir is the server's data directory; "" makes a temporary one,
	// removed at the end unless Keep.
	DataDir string
	Keep    bool

	Epochs       int
	LearningRate float64
	BatchSize    int
	LoraR        int
	LoraAlpha    int
	LoraDropout  float64
	LogInterval  int // logModelMetricsIntervalInSteps
	// Threads is the number of threads training uses (0: GOMAXPROCS).
	Threads int
	// Prompts are the numbers asked about at the end; nil means
	// examples.NumberWordsHeldOut.
	Prompts   []int
	MaxTokens int
	// PollInterval is how often progress is read (0: 500 ms).
	PollInterval time.Duration

	// Out receives the demo's report; nil means os.Stdout. With Bar, the
	// training progress is one redrawn line (a terminal), else a line per
	// logged metrics point.
	Out io.Writer
	Bar bool
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Row is one held-out prompt answered by both models.
type Row struct {
	Prompt   string
	Expected string // the completion the dataset's rule gives
	Base     string // the base model's greedy answer
	Custom   string // the fine-tuned model's greedy answer
}

// Result is a finished demo.
type Result struct {
	DataDir        string
	ModelID        string
	LifecycleState string
	FinalAccuracy  float64
	FinalLoss      float64
	Steps          int // the last logged training step
	Rows           []Row
	BaseCorrect    int // rows whose answer equals Expected
	CustomCorrect  int
	TrainTime      time.Duration // CreateModel to ACTIVE
	Total          time.Duration
}

func (o Options) withDefaults() Options {
	def := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	def(&o.Epochs, DefaultEpochs)
	def(&o.BatchSize, DefaultBatchSize)
	def(&o.LoraR, DefaultLoraR)
	def(&o.LoraAlpha, DefaultLoraAlpha)
	def(&o.LogInterval, DefaultLogInterval)
	def(&o.MaxTokens, DefaultMaxTokens)
	if o.LearningRate == 0 {
		o.LearningRate = DefaultLearningRate
	}
	if o.Prompts == nil {
		o.Prompts = examples.NumberWordsHeldOut
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run runs the demo and prints its report to opt.Out.
func Run(ctx context.Context, opt Options) (res *Result, err error) {
	opt = opt.withDefaults()
	start := time.Now()
	out := opt.Out
	res = &Result{}

	dataDir := opt.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "gantry-demo-"); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if !opt.Keep {
			defer os.RemoveAll(dataDir)
		}
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	res.DataDir = dataDir

	// 1. An embedded server on a loopback port.
	trainer := finetune.New(dataDir)
	trainer.Threads = opt.Threads
	trainer.Logger = opt.Logger
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen: %w", err)
	}
	srv, err := server.Open(ctx, server.Config{
		Listen: ln.Addr().String(), DataDir: dataDir, Logger: opt.Logger, Trainer: trainer,
		InstallDefaultBaseModel: basemodel.Install, RateLimit: -1, ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo: start server: %w", err)
	}
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(srvCtx, ln) }()
	defer func() {
		stopServer()
		if serr := <-served; serr != nil && err == nil {
			err = fmt.Errorf("demo: server: %w", serr)
		}
		if cerr := srv.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("demo: close server: %w", cerr)
		}
	}()
	endpoint := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "Gantry demo: server at %s, data in %s\n", endpoint, dataDir)

	// 2. SDK clients signed with the key the server wrote to DATA/oci.
	c, err := client.New(client.Config{ConfigFile: auth.ConfigPath(dataDir), Endpoint: endpoint})
	if err != nil {
		return nil, fmt.Errorf("demo: client: %w", err)
	}
	c.Out, c.Err = io.Discard, io.Discard
	tenancy := c.TenancyID

	// 3. The dataset, uploaded with the SDK's UploadManager.
	ns, err := c.Namespace(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := ensureBucket(ctx, c.OS, ns, DatasetBucket, tenancy); err != nil {
		return nil, err
	}
	up := transfer.NewUploadManager()
	if _, err := up.UploadStream(ctx, transfer.UploadStreamRequest{
		UploadRequest: transfer.UploadRequest{
			NamespaceName: common.String(ns), BucketName: common.String(DatasetBucket), ObjectName: common.String(DatasetObject),
			ObjectStorageClient: &c.OS, ContentType: common.String("application/jsonl"),
		},
		StreamReader: bytes.NewReader(examples.NumberWordsJSONL),
	}); err != nil {
		return nil, fmt.Errorf("demo: upload dataset: %w", err)
	}
	fmt.Fprintf(out, "uploaded dataset  oci://%s/%s/%s (%d examples, %d bytes)\n", ns, DatasetBucket, DatasetObject,
		bytes.Count(examples.NumberWordsJSONL, []byte("\n")), len(examples.NumberWordsJSONL))

	// 4. A fine-tuning cluster.
	cl, err := c.GenAI.CreateDedicatedAiCluster(ctx, generativeai.CreateDedicatedAiClusterRequest{
		CreateDedicatedAiClusterDetails: generativeai.CreateDedicatedAiClusterDetails{
			Type: generativeai.DedicatedAiClusterTypeFineTuning, CompartmentId: &tenancy, UnitCount: common.Int(1),
			UnitShape: generativeai.DedicatedAiClusterUnitShapeSmallGenericV2, DisplayName: common.String("gantry-demo-cluster"),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("demo: create cluster: %w", err)
	}
	clusterID := *cl.Id
	if err := waitCluster(ctx, c.GenAI, clusterID, opt.PollInterval); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "cluster ACTIVE    %s (FINE_TUNING, 1 unit)\n", clusterID)

	// 5. The base model, from the catalog, and the custom model.
	baseID, baseDir, err := findBaseModel(ctx, c.GenAI, srv, tenancy)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "base model        %s (%s)\n", basemodel.DisplayName, baseID)
	tc := generativeai.LoraTrainingConfig{
		TotalTrainingEpochs: common.Int(opt.Epochs), LearningRate: common.Float64(opt.LearningRate),
		TrainingBatchSize: common.Int(opt.BatchSize), LogModelMetricsIntervalInSteps: common.Int(opt.LogInterval),
		LoraR: common.Int(opt.LoraR), LoraAlpha: common.Int(opt.LoraAlpha), LoraDropout: common.Float64(opt.LoraDropout),
		EarlyStoppingPatience: common.Int(0),
	}
	fmt.Fprintf(out, "fine-tuning       LoRA r=%d alpha=%d dropout=%g, %d epochs, learning rate %g, batch %d (OCI's defaults: 3 epochs, 0.0002, r=8)\n",
		opt.LoraR, opt.LoraAlpha, opt.LoraDropout, opt.Epochs, opt.LearningRate, opt.BatchSize)
	trainStart := time.Now()
	cm, err := c.GenAI.CreateModel(ctx, generativeai.CreateModelRequest{CreateModelDetails: generativeai.CreateModelDetails{
		CompartmentId: &tenancy, BaseModelId: &baseID,
		DisplayName: common.String("number-words"), Version: common.String(time.Now().UTC().Format("20060102-150405.000")),
		Description: common.String("gantry demo: spell out numbers in words"),
		FineTuneDetails: &generativeai.FineTuneDetails{
			TrainingDataset: generativeai.ObjectStorageDataset{
				NamespaceName: common.String(ns), BucketName: common.String(DatasetBucket), ObjectName: common.String(DatasetObject),
			},
			DedicatedAiClusterId: &clusterID,
			TrainingConfig:       tc,
		},
	}})
	if err != nil {
		return nil, fmt.Errorf("demo: create model: %w", err)
	}
	res.ModelID = *cm.Id
	fmt.Fprintf(out, "custom model      %s (CREATING)\n", res.ModelID)

	// 6. Progress until the model is ACTIVE or FAILED.
	m, last, err := watch(ctx, c, res.ModelID, deref(cm.OpcWorkRequestId), opt)
	if err != nil {
		return nil, err
	}
	res.TrainTime = time.Since(trainStart)
	res.Steps = last
	res.LifecycleState = string(m.LifecycleState)
	if m.LifecycleState != generativeai.ModelLifecycleStateActive {
		return res, fmt.Errorf("demo: the model ended %s: %s", m.LifecycleState, deref(m.LifecycleDetails))
	}
	acc, loss, ok := metrics(m.ModelMetrics)
	if !ok {
		return res, fmt.Errorf("demo: the ACTIVE model %s has no metrics", res.ModelID)
	}
	res.FinalAccuracy, res.FinalLoss = acc, loss
	fmt.Fprintf(out, "model ACTIVE      in %s: final accuracy %.4f, final loss %.4f\n", res.TrainTime.Round(time.Second), acc, loss)
	if d := deref(m.LifecycleDetails); d != "" {
		fmt.Fprintf(out, "                  %s\n", d)
	}

	// 7. The adapter, downloaded from the artifact bucket.
	adapterDir := filepath.Join(dataDir, "demo-adapter")
	files, err := c.DownloadModel(ctx, res.ModelID, adapterDir)
	if err != nil {
		return res, fmt.Errorf("demo: download adapter: %w", err)
	}
	fmt.Fprintf(out, "downloaded        %d files from bucket %s to %s\n", len(files), client.ArtifactBucket, adapterDir)

	// 8. Held-out prompts, base model and fine-tuned model side by side.
	if res.Rows, err = compare(ctx, baseDir, adapterDir, opt.Prompts, opt.MaxTokens); err != nil {
		return res, err
	}
	for _, r := range res.Rows {
		if r.Base == r.Expected {
			res.BaseCorrect++
		}
		if r.Custom == r.Expected {
			res.CustomCorrect++
		}
	}
	fmt.Fprintf(out, "\nHeld-out prompts (numbers not in the dataset), greedy decoding:\n\n")
	printRows(out, res.Rows)
	fmt.Fprintf(out, "\nexact answers: base model %d/%d, fine-tuned %d/%d\n", res.BaseCorrect, len(res.Rows), res.CustomCorrect, len(res.Rows))
	res.Total = time.Since(start)
	if opt.Keep || opt.DataDir != "" {
		fmt.Fprintf(out, "data kept in %s (serve it with: gantry serve --data %s)\n", dataDir, dataDir)
	}
	fmt.Fprintf(out, "demo finished in %s\n", res.Total.Round(time.Second))
	return res, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ensureBucket creates the bucket unless it exists.
func ensureBucket(ctx context.Context, osc objectstorage.ObjectStorageClient, ns, name, compartment string) error {
	_, err := osc.CreateBucket(ctx, objectstorage.CreateBucketRequest{NamespaceName: &ns, CreateBucketDetails: objectstorage.CreateBucketDetails{
		Name: &name, CompartmentId: &compartment,
	}})
	var se common.ServiceError
	if errors.As(err, &se) && se.GetHTTPStatusCode() == 409 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo: create bucket %s: %w", name, err)
	}
	return nil
}

// waitCluster polls until the cluster is ACTIVE.
func waitCluster(ctx context.Context, g generativeai.GenerativeAiClient, id string, every time.Duration) error {
	for {
		r, err := g.GetDedicatedAiCluster(ctx, generativeai.GetDedicatedAiClusterRequest{DedicatedAiClusterId: &id})
		if err != nil {
			return fmt.Errorf("demo: get cluster: %w", err)
		}
		switch r.LifecycleState {
		case generativeai.DedicatedAiClusterLifecycleStateActive:
			return nil
		case generativeai.DedicatedAiClusterLifecycleStateFailed, generativeai.DedicatedAiClusterLifecycleStateDeleted:
			return fmt.Errorf("demo: cluster %s is %s: %s", id, r.LifecycleState, deref(r.LifecycleDetails))
		}
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// findBaseModel finds the built-in base model through ListModels and its
// directory in the server's catalog.
func findBaseModel(ctx context.Context, g generativeai.GenerativeAiClient, srv *server.Server, compartment string) (id, dir string, err error) {
	r, err := g.ListModels(ctx, generativeai.ListModelsRequest{
		CompartmentId: &compartment, DisplayName: common.String(basemodel.DisplayName),
		Capability: []generativeai.ModelCapabilityEnum{generativeai.ModelCapabilityFineTune},
	})
	if err != nil {
		return "", "", fmt.Errorf("demo: list models: %w", err)
	}
	for _, m := range r.Items {
		if m.Type != generativeai.ModelTypeBase {
			continue
		}
		bm, ok := srv.Catalog.Get(*m.Id)
		if !ok {
			continue
		}
		return *m.Id, bm.Dir, nil
	}
	return "", "", fmt.Errorf("demo: the server has no base model named %s (is %s/%s another catalog?)", basemodel.DisplayName, server.BaseModelsDir, server.DefaultBaseModelName)
}

// metrics reads finalAccuracy and finalLoss of either metrics type.
func metrics(mm generativeai.ModelMetrics) (acc, loss float64, ok bool) {
	var a, l *float64
	switch v := mm.(type) {
	case generativeai.TextGenerationModelMetrics:
		a, l = v.FinalAccuracy, v.FinalLoss
	case *generativeai.TextGenerationModelMetrics:
		a, l = v.FinalAccuracy, v.FinalLoss
	case generativeai.ChatModelMetrics:
		a, l = v.FinalAccuracy, v.FinalLoss
	case *generativeai.ChatModelMetrics:
		a, l = v.FinalAccuracy, v.FinalLoss
	}
	if a == nil || l == nil {
		return 0, 0, false
	}
	return *a, *l, true
}

// watch polls the work request, its logs and the model until the model
// leaves CREATING, showing progress from the metric lines: a redrawn bar
// (opt.Bar) or the last metrics point of each epoch. It returns the model
// and the last logged step.
func watch(ctx context.Context, c *client.Client, modelID, wrID string, opt Options) (*generativeai.Model, int, error) {
	out := opt.Out
	seen := 0
	var lastPt, pending client.MetricPoint
	havePending := false
	pct := float32(0)
	drawn := false
	status := ""
	draw := func() {
		const width = 30
		fill := int(float32(width) * pct / 100)
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		if lastPt.Step == 0 {
			fmt.Fprintf(out, "\r[%s] %3.0f%%  %s ", bar, pct, strings.ToLower(status))
		} else {
			fmt.Fprintf(out, "\r[%s] %3.0f%%  epoch %d/%d  step %d  loss %.4f ", bar, pct, lastPt.Epoch, opt.Epochs, lastPt.Step, lastPt.TrainLoss)
		}
		drawn = true
	}
	printPoint := func(p client.MetricPoint) {
		line := fmt.Sprintf("  epoch %2d/%d  step %4d  loss %.4f  lr %.3g", p.Epoch, opt.Epochs, p.Step, p.TrainLoss, p.LearningRate)
		if p.ValLoss != nil && p.ValAccuracy != nil {
			line += fmt.Sprintf("  validation loss %.4f  accuracy %.4f", *p.ValLoss, *p.ValAccuracy)
		}
		fmt.Fprintln(out, line)
	}
	defer func() {
		if drawn {
			fmt.Fprintln(out)
		}
	}()
	for {
		if wrID != "" {
			wr, err := c.GenAI.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &wrID})
			if err != nil {
				return nil, 0, fmt.Errorf("demo: get work request: %w", err)
			}
			if wr.PercentComplete != nil {
				pct = *wr.PercentComplete
			}
			status = string(wr.Status)
			msgs, err := logMessages(ctx, c.GenAI, wrID)
			if err != nil {
				return nil, 0, err
			}
			for _, msg := range msgs[min(seen, len(msgs)):] {
				p, ok := client.ParseMetricLine(msg)
				if !ok {
					continue
				}
				if !opt.Bar && havePending && p.Epoch != pending.Epoch {
					printPoint(pending)
				}
				lastPt, pending, havePending = p, p, true
			}
			seen = max(seen, len(msgs))
			if opt.Bar {
				draw()
			}
		}
		m, err := c.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &modelID})
		if err != nil {
			return nil, 0, fmt.Errorf("demo: get model: %w", err)
		}
		if m.LifecycleState != generativeai.ModelLifecycleStateCreating {
			if opt.Bar && m.LifecycleState == generativeai.ModelLifecycleStateActive {
				pct = 100
				draw()
			} else if !opt.Bar && havePending {
				printPoint(pending)
			}
			return &m.Model, lastPt.Step, nil
		}
		if err := sleep(ctx, opt.PollInterval); err != nil {
			return nil, 0, err
		}
	}
}

// logMessages returns every log message of a work request, in order.
func logMessages(ctx context.Context, g generativeai.GenerativeAiClient, wrID string) ([]string, error) {
	var msgs []string
	req := generativeai.ListWorkRequestLogsRequest{WorkRequestId: &wrID, Limit: common.Int(1000),
		SortBy: generativeai.ListWorkRequestLogsSortByTimestamp, SortOrder: generativeai.ListWorkRequestLogsSortOrderAsc}
	for {
		r, err := g.ListWorkRequestLogs(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("demo: list work request logs: %w", err)
		}
		for _, e := range r.Items {
			msgs = append(msgs, deref(e.Message))
		}
		if r.OpcNextPage == nil || *r.OpcNextPage == "" {
			return msgs, nil
		}
		req.Page = r.OpcNextPage
	}
}

// compare answers each prompt with the base model and with the adapter
// merged into a second copy of it.
func compare(ctx context.Context, baseDir, adapterDir string, numbers []int, maxTokens int) ([]Row, error) {
	tok, err := tokenizer.Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("demo: base model tokenizer: %w", err)
	}
	base, err := model.Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("demo: load base model: %w", err)
	}
	defer base.Close()
	tuned, err := model.Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("demo: load base model: %w", err)
	}
	defer tuned.Close()
	ad, err := peft.Load(adapterDir)
	if err != nil {
		return nil, fmt.Errorf("demo: load adapter: %w", err)
	}
	if err := ad.Merge(&tuned.Config, &tuned.Weights); err != nil {
		return nil, fmt.Errorf("demo: merge adapter: %w", err)
	}
	rows := make([]Row, len(numbers))
	prompts := make([][]int, len(numbers))
	for i, n := range numbers {
		rows[i] = Row{Prompt: examples.NumberWordsPrompt(n), Expected: examples.NumberWordsCompletion(n)}
		prompts[i] = tok.Encode(rows[i].Prompt, false)
	}
	for _, mc := range []struct {
		m   *model.Model
		set func(r *Row, s string)
	}{
		{base, func(r *Row, s string) { r.Base = s }},
		{tuned, func(r *Row, s string) { r.Custom = s }},
	} {
		outs, err := mc.m.GenerateBatch(ctx, prompts, model.GenerateOptions{MaxTokens: maxTokens, Stop: []string{"\n", "."}, Decoder: tok})
		if err != nil {
			return nil, fmt.Errorf("demo: generate: %w", err)
		}
		for i, ids := range outs {
			text := tok.Decode(ids, true)
			if j := strings.IndexByte(text, '\n'); j >= 0 {
				text = text[:j]
			}
			mc.set(&rows[i], text)
		}
	}
	return rows, nil
}

// printRows prints the side-by-side table.
func printRows(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "prompt\texpected\tbase model\tfine-tuned")
	mark := func(got, want string) string {
		if got == want {
			return "✓"
		}
		return "✗"
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s %s\n", r.Prompt, strings.TrimSpace(r.Expected),
			quote(r.Base), mark(r.Base, r.Expected), quote(r.Custom), mark(r.Custom, r.Expected))
	}
	tw.Flush()
}

// quote shows an answer on one line, trimmed of its leading space, with
// control characters escaped.
func quote(s string) string {
	s = strings.TrimPrefix(s, " ")
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return `""`
	}
	return b.String()
}
