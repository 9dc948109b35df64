package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gantryml/gantry/internal/client"
)

// clientFlags are the connection and output flags every client command takes.
type clientFlags struct {
	config, profile, endpoint, output string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", client.DefaultConfigFile(), "OCI config `file`")
	fs.StringVar(&c.profile, "profile", "DEFAULT", "profile in the config file")
	fs.StringVar(&c.endpoint, "endpoint", "", "API endpoint `URL` (default $GANTRY_ENDPOINT, else "+client.DefaultEndpoint+")")
	fs.StringVar(&c.output, "output", "json", "output format: json or table")
}

func (c *clientFlags) client() (*client.Client, error) {
	if c.output != "json" && c.output != "table" {
		return nil, fmt.Errorf("--output %q: want json or table", c.output)
	}
	cl, err := client.New(client.Config{ConfigFile: c.config, Profile: c.profile, Endpoint: c.endpoint})
	if err != nil {
		return nil, err
	}
	cl.Format = c.output
	return cl, nil
}

// parseArgs parses flags wherever they appear among the positional
// arguments and checks the count of positional ones.
func parseArgs(fs *flag.FlagSet, args []string, usage string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if want >= 0 && len(pos) != want {
		return nil, fmt.Errorf("usage: %s", usage)
	}
	return pos, nil
}

// optional flag values: nil unless the flag was given.
type optString struct{ v *string }

func (o *optString) String() string {
	if o.v == nil {
		return ""
	}
	return *o.v
}
func (o *optString) Set(s string) error { o.v = &s; return nil }

type optInt struct{ v *int }

func (o *optInt) String() string {
	if o.v == nil {
		return ""
	}
	return strconv.Itoa(*o.v)
}
func (o *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	o.v = &n
	return nil
}

type optFloat struct{ v *float64 }

func (o *optFloat) String() string {
	if o.v == nil {
		return ""
	}
	return strconv.FormatFloat(*o.v, 'g', -1, 64)
}
func (o *optFloat) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	o.v = &f
	return nil
}

// tagsFlag reads freeform tags as JSON ({"k":"v"}) or k=v,k2=v2.
type tagsFlag struct{ m map[string]string }

func (t *tagsFlag) String() string { return "" }
func (t *tagsFlag) Set(s string) error {
	t.m = map[string]string{}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		return json.Unmarshal([]byte(s), &t.m)
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", kv)
		}
		t.m[k] = v
	}
	return nil
}

func runModelList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model list", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var p client.ModelListParams
	fs.StringVar(&p.CompartmentID, "compartment-id", "", "compartment OCID (default: the tenancy)")
	fs.StringVar(&p.DisplayName, "display-name", "", "only models with this display name")
	fs.StringVar(&p.LifecycleState, "lifecycle-state", "", "only models in this state (DELETED models show only when asked)")
	fs.StringVar(&p.Vendor, "vendor", "", "only models of this vendor")
	fs.StringVar(&p.Capability, "capability", "", "only models with this capability (FINE_TUNE, CHAT, ...)")
	fs.StringVar(&p.ID, "id", "", "only the model with this OCID")
	fs.IntVar(&p.Limit, "limit", 0, "page size")
	fs.BoolVar(&p.All, "all", true, "fetch every page")
	if _, err := parseArgs(fs, args, "gantry model list [flags]", 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.ListModels(ctx, p)
}

func runModelGet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model get", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args, "gantry model get MODEL_ID [flags]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.GetModel(ctx, pos[0])
}

func runModelCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model create", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var p client.ModelCreateParams
	var tags tagsFlag
	var epochs, batch, patience, logEvery, loraR, loraAlpha, lastLayers optInt
	var lr, threshold, dropout optFloat
	fs.StringVar(&p.CompartmentID, "compartment-id", "", "compartment OCID (default: the tenancy)")
	fs.StringVar(&p.DisplayName, "display-name", "", "display name")
	fs.StringVar(&p.Description, "description", "", "description")
	fs.StringVar(&p.Vendor, "vendor", "", "vendor")
	fs.StringVar(&p.Version, "version", "", "version (a new version of an existing display name)")
	fs.StringVar(&p.BaseModelID, "base-model-id", "", "OCID of the base model to fine-tune (required)")
	fs.StringVar(&p.ClusterID, "cluster-id", "", "OCID of the FINE_TUNING dedicated AI cluster (required)")
	fs.StringVar(&p.Dataset, "dataset", "", "training data object as [namespace/]bucket/object (required)")
	fs.StringVar(&p.Training.Type, "method", "LORA_TRAINING_CONFIG", "training config type: LORA_TRAINING_CONFIG, TFEW_TRAINING_CONFIG, VANILLA_TRAINING_CONFIG (or lora, tfew, vanilla)")
	fs.Var(&epochs, "epochs", "totalTrainingEpochs")
	fs.Var(&lr, "learning-rate", "learningRate")
	fs.Var(&batch, "batch-size", "trainingBatchSize")
	fs.Var(&patience, "early-stopping-patience", "earlyStoppingPatience")
	fs.Var(&threshold, "early-stopping-threshold", "earlyStoppingThreshold")
	fs.Var(&logEvery, "log-interval", "logModelMetricsIntervalInSteps")
	fs.Var(&loraR, "lora-r", "loraR (LoRA only)")
	fs.Var(&loraAlpha, "lora-alpha", "loraAlpha (LoRA only)")
	fs.Var(&dropout, "lora-dropout", "loraDropout (LoRA only)")
	fs.Var(&lastLayers, "num-of-last-layers", "numOfLastLayers (Vanilla only)")
	fs.Var(&tags, "freeform-tags", `freeform tags as {"k":"v"} or k=v,k2=v2`)
	fs.StringVar(&p.RetryToken, "retry-token", "", "opc-retry-token making the create idempotent")
	fs.BoolVar(&p.Wait, "wait", false, "wait until training finishes, drawing progress")
	if _, err := parseArgs(fs, args, "gantry model create --base-model-id ID --cluster-id ID --dataset BUCKET/OBJECT [flags]", 0); err != nil {
		return err
	}
	p.Training.TotalTrainingEpochs, p.Training.LearningRate, p.Training.TrainingBatchSize = epochs.v, lr.v, batch.v
	p.Training.EarlyStoppingPatience, p.Training.EarlyStoppingThreshold, p.Training.LogModelMetricsIntervalInSteps = patience.v, threshold.v, logEvery.v
	p.Training.LoraR, p.Training.LoraAlpha, p.Training.LoraDropout, p.Training.NumOfLastLayers = loraR.v, loraAlpha.v, dropout.v, lastLayers.v
	p.FreeformTag = tags.m
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.CreateModel(ctx, p)
}

func runModelUpdate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model update", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var name, desc, vendor, version optString
	var tags tagsFlag
	var ifMatch string
	fs.Var(&name, "display-name", "new display name")
	fs.Var(&desc, "description", "new description")
	fs.Var(&vendor, "vendor", "new vendor")
	fs.Var(&version, "version", "new version")
	fs.Var(&tags, "freeform-tags", `freeform tags as {"k":"v"} or k=v,k2=v2`)
	fs.StringVar(&ifMatch, "if-match", "", "only update if the model's etag is this")
	pos, err := parseArgs(fs, args, "gantry model update MODEL_ID [flags]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.UpdateModel(ctx, pos[0], client.ModelUpdateParams{DisplayName: name.v, Description: desc.v, Vendor: vendor.v, Version: version.v, FreeformTags: tags.m, IfMatch: ifMatch})
}

func runModelDelete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model delete", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	ifMatch := fs.String("if-match", "", "only delete if the model's etag is this")
	wait := fs.Bool("wait", false, "wait until the model is DELETED")
	pos, err := parseArgs(fs, args, "gantry model delete MODEL_ID [flags]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.DeleteModel(ctx, pos[0], *ifMatch, *wait)
}

func runModelDownload(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model download", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	out := fs.String("out", "", "directory to write the model's artifacts to (required)")
	pos, err := parseArgs(fs, args, "gantry model download MODEL_ID --out DIR", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	_, err = c.DownloadModel(ctx, pos[0], *out)
	return err
}

func runModelMetrics(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry model metrics", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per metrics point")
	plot := fs.String("plot", "", "draw the train and validation loss curves to this PNG `file`")
	pos, err := parseArgs(fs, args, "gantry model metrics MODEL_ID [--json] [--plot FILE.png]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.PrintModelMetrics(ctx, pos[0], *asJSON, *plot)
}

// runCluster dispatches "gantry cluster VERB".
func runCluster(ctx context.Context, args []string) error {
	return dispatch(ctx, "gantry cluster", map[string]command{
		"create": {"create a dedicated AI cluster", runClusterCreate},
		"get":    {"get a dedicated AI cluster", runClusterGet},
		"list":   {"list dedicated AI clusters", runClusterList},
		"update": {"update a dedicated AI cluster", runClusterUpdate},
		"delete": {"delete a dedicated AI cluster", runClusterDelete},
	}, args)
}

func runClusterCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry cluster create", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var p client.ClusterCreateParams
	fs.StringVar(&p.CompartmentID, "compartment-id", "", "compartment OCID (default: the tenancy)")
	fs.StringVar(&p.DisplayName, "display-name", "", "display name")
	fs.StringVar(&p.Description, "description", "", "description")
	fs.StringVar(&p.Type, "type", "FINE_TUNING", "FINE_TUNING or HOSTING")
	fs.StringVar(&p.UnitShape, "unit-shape", "LARGE_GENERIC", "unit shape (any SDK value)")
	fs.IntVar(&p.UnitCount, "unit-count", 1, "units: concurrent fine-tuning jobs")
	fs.StringVar(&p.RetryToken, "retry-token", "", "opc-retry-token making the create idempotent")
	fs.BoolVar(&p.Wait, "wait", false, "wait until the cluster is ACTIVE")
	if _, err := parseArgs(fs, args, "gantry cluster create [flags]", 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.CreateCluster(ctx, p)
}

func runClusterGet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry cluster get", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args, "gantry cluster get CLUSTER_ID [flags]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.GetCluster(ctx, pos[0])
}

func runClusterList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry cluster list", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var p client.ClusterListParams
	fs.StringVar(&p.CompartmentID, "compartment-id", "", "compartment OCID (default: the tenancy)")
	fs.StringVar(&p.DisplayName, "display-name", "", "only clusters with this display name")
	fs.StringVar(&p.LifecycleState, "lifecycle-state", "", "only clusters in this state")
	fs.IntVar(&p.Limit, "limit", 0, "page size")
	fs.BoolVar(&p.All, "all", true, "fetch every page")
	if _, err := parseArgs(fs, args, "gantry cluster list [flags]", 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.ListClusters(ctx, p)
}

func runClusterUpdate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry cluster update", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var name, desc optString
	var units optInt
	var p client.ClusterUpdateParams
	fs.Var(&name, "display-name", "new display name")
	fs.Var(&desc, "description", "new description")
	fs.Var(&units, "unit-count", "new unit count")
	fs.StringVar(&p.IfMatch, "if-match", "", "only update if the cluster's etag is this")
	fs.BoolVar(&p.Wait, "wait", false, "wait for the update's work request")
	pos, err := parseArgs(fs, args, "gantry cluster update CLUSTER_ID [flags]", 1)
	if err != nil {
		return err
	}
	p.DisplayName, p.Description, p.UnitCount = name.v, desc.v, units.v
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.UpdateCluster(ctx, pos[0], p)
}

func runClusterDelete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry cluster delete", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	ifMatch := fs.String("if-match", "", "only delete if the cluster's etag is this")
	wait := fs.Bool("wait", false, "wait until the cluster is DELETED")
	pos, err := parseArgs(fs, args, "gantry cluster delete CLUSTER_ID [flags]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.DeleteCluster(ctx, pos[0], *ifMatch, *wait)
}

// runWorkRequest dispatches "gantry work-request VERB".
func runWorkRequest(ctx context.Context, args []string) error {
	return dispatch(ctx, "gantry work-request", map[string]command{
		"get":    {"get a work request (--wait: until it finishes)", runWorkRequestGet},
		"list":   {"list work requests", runWorkRequestList},
		"logs":   {"print a work request's logs (--wait: follow them)", runWorkRequestLogs},
		"errors": {"print a work request's errors", runWorkRequestErrors},
	}, args)
}

func runWorkRequestGet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry work-request get", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	wait := fs.Bool("wait", false, "wait until the work request finishes, drawing progress")
	pos, err := parseArgs(fs, args, "gantry work-request get WORK_REQUEST_ID [--wait]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.GetWorkRequest(ctx, pos[0], *wait)
}

func runWorkRequestList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry work-request list", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var p client.WorkRequestListParams
	fs.StringVar(&p.CompartmentID, "compartment-id", "", "compartment OCID (default: the tenancy)")
	fs.StringVar(&p.ResourceID, "resource-id", "", "only work requests on this resource")
	fs.StringVar(&p.Status, "status", "", "only work requests with this status")
	fs.IntVar(&p.Limit, "limit", 0, "page size")
	fs.BoolVar(&p.All, "all", true, "fetch every page")
	if _, err := parseArgs(fs, args, "gantry work-request list [flags]", 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.ListWorkRequests(ctx, p)
}

func runWorkRequestLogs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry work-request logs", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	wait := fs.Bool("wait", false, "follow the logs until the work request finishes")
	pos, err := parseArgs(fs, args, "gantry work-request logs WORK_REQUEST_ID [--wait]", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.PrintWorkRequestLogs(ctx, pos[0], *wait)
}

func runWorkRequestErrors(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry work-request errors", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args, "gantry work-request errors WORK_REQUEST_ID", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.PrintWorkRequestErrors(ctx, pos[0])
}

// runObjectStorage dispatches "gantry os VERB".
func runObjectStorage(ctx context.Context, args []string) error {
	return dispatch(ctx, "gantry os", map[string]command{
		"put": {"upload a file: put FILE BUCKET[/OBJECT]", runOSPut},
		"get": {"download an object: get BUCKET/OBJECT [FILE]", runOSGet},
		"ls":  {"list buckets, or a bucket's objects: ls [BUCKET[/PREFIX]]", runOSList},
		"mb":  {"make a bucket: mb BUCKET", runOSMakeBucket},
		"rm":  {"delete an object: rm BUCKET/OBJECT", runOSRemove},
		"rb":  {"delete an empty bucket: rb BUCKET", runOSRemoveBucket},
	}, args)
}

func runOSPut(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry os put", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var p client.PutParams
	var partMiB int64
	fs.Int64Var(&partMiB, "part-size-mib", 0, "multipart part size in MiB (default: the SDK's 128)")
	fs.StringVar(&p.ContentType, "content-type", "", "content type")
	pos, err := parseArgs(fs, args, "gantry os put FILE|- BUCKET[/OBJECT] [flags]", 2)
	if err != nil {
		return err
	}
	p.PartSize = partMiB << 20
	bucket, object := client.SplitObjectPath(pos[1])
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.PutFile(ctx, pos[0], bucket, object, p)
}

func runOSGet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry os get", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args, "gantry os get BUCKET/OBJECT [FILE|-]", -1)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return fmt.Errorf("usage: gantry os get BUCKET/OBJECT [FILE|-]")
	}
	bucket, object := client.SplitObjectPath(pos[0])
	if object == "" {
		return fmt.Errorf("%q names no object: want BUCKET/OBJECT", pos[0])
	}
	file := "-"
	if len(pos) == 2 {
		file = pos[1]
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if file == "-" {
		c.Out = os.Stdout
	}
	return c.GetFile(ctx, bucket, object, file)
}

func runOSList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry os ls", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	compartment := fs.String("compartment-id", "", "compartment of the buckets to list (default: the tenancy)")
	delimiter := fs.String("delimiter", "", "roll names up to this delimiter into prefixes (e.g. /)")
	pos, err := parseArgs(fs, args, "gantry os ls [BUCKET[/PREFIX]]", -1)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("usage: gantry os ls [BUCKET[/PREFIX]]")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return c.ListBuckets(ctx, *compartment)
	}
	bucket, prefix := client.SplitObjectPath(pos[0])
	return c.ListObjects(ctx, bucket, prefix, *delimiter)
}

func runOSMakeBucket(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry os mb", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	compartment := fs.String("compartment-id", "", "compartment of the bucket (default: the tenancy)")
	pos, err := parseArgs(fs, args, "gantry os mb BUCKET", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.MakeBucket(ctx, pos[0], *compartment)
}

func runOSRemove(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry os rm", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args, "gantry os rm BUCKET/OBJECT", 1)
	if err != nil {
		return err
	}
	bucket, object := client.SplitObjectPath(pos[0])
	if object == "" {
		return fmt.Errorf("%q names no object: want BUCKET/OBJECT", pos[0])
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.DeleteObject(ctx, bucket, object)
}

func runOSRemoveBucket(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gantry os rb", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args, "gantry os rb BUCKET", 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.DeleteBucket(ctx, pos[0])
}
