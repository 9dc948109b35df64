package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/gantryml/gantry/internal/core"
)

// Documented bounds of the fine-tuning hyperparameters, and OCI's defaults.
const (
	MaxEpochs           = 100
	MaxBatchSize        = 1024
	MaxPatience         = 1000
	MaxLogInterval      = 1_000_000
	MaxLoraR            = 64
	MaxLoraAlpha        = 128
	DefaultEpochs       = 3
	DefaultBatchSize    = 8
	DefaultPatience     = 15
	DefaultThreshold    = 0.0001
	DefaultLogInterval  = 10
	DefaultLoRALR       = 0.0002
	DefaultTFewLR       = 0.01
	DefaultVanillaLR    = 0.01
	DefaultLoraR        = 8
	DefaultLoraAlpha    = 8
	DefaultLoraDropout  = 0.1
	DefaultLastLayers   = 15
	maxDisplayNameBytes = 255
	maxDescBytes        = 400
)

// createModelBody is CreateModelDetails as sent; the polymorphic parts
// stay raw until their discriminator is checked.
type createModelBody struct {
	CompartmentID   *string `json:"compartmentId"`
	BaseModelID     *string `json:"baseModelId"`
	FineTuneDetails *struct {
		TrainingDataset      json.RawMessage `json:"trainingDataset"`
		DedicatedAiClusterID *string         `json:"dedicatedAiClusterId"`
		TrainingConfig       json.RawMessage `json:"trainingConfig"`
	} `json:"fineTuneDetails"`
	DisplayName  *string                   `json:"displayName"`
	Vendor       *string                   `json:"vendor"`
	Version      *string                   `json:"version"`
	Description  *string                   `json:"description"`
	FreeformTags map[string]string         `json:"freeformTags"`
	DefinedTags  map[string]map[string]any `json:"definedTags"`
}

type datasetBody struct {
	DatasetType   *string `json:"datasetType"`
	NamespaceName *string `json:"namespaceName"`
	BucketName    *string `json:"bucketName"`
	ObjectName    *string `json:"objectName"`
}

type trainingConfigBody struct {
	TrainingConfigType             *string  `json:"trainingConfigType"`
	TotalTrainingEpochs            *int     `json:"totalTrainingEpochs"`
	LearningRate                   *float64 `json:"learningRate"`
	TrainingBatchSize              *int     `json:"trainingBatchSize"`
	EarlyStoppingPatience          *int     `json:"earlyStoppingPatience"`
	EarlyStoppingThreshold         *float64 `json:"earlyStoppingThreshold"`
	LogModelMetricsIntervalInSteps *int     `json:"logModelMetricsIntervalInSteps"`
	LoraR                          *int     `json:"loraR"`
	LoraAlpha                      *int     `json:"loraAlpha"`
	LoraDropout                    *float64 `json:"loraDropout"`
	NumOfLastLayers                *int     `json:"numOfLastLayers"`
}

const (
	ftd = "fineTuneDetails"
	tcf = "fineTuneDetails.trainingConfig"
	dsf = "fineTuneDetails.trainingDataset"
)

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// parseDataset validates the training dataset (datasetType OBJECT_STORAGE).
func parseDataset(raw json.RawMessage) (core.Dataset, error) {
	if isNull(raw) {
		return core.Dataset{}, Missing(dsf)
	}
	var b datasetBody
	if err := DecodeJSON(raw, &b); err != nil {
		return core.Dataset{}, prefixErr(dsf, err)
	}
	if b.DatasetType == nil {
		return core.Dataset{}, Missing(dsf + ".datasetType")
	}
	if err := oneOf(dsf+".datasetType", *b.DatasetType, core.DatasetTypeObjectStorage); err != nil {
		return core.Dataset{}, err
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"namespaceName", b.NamespaceName}, {"bucketName", b.BucketName}, {"objectName", b.ObjectName}} {
		if f.v == nil || *f.v == "" {
			return core.Dataset{}, Missing(dsf + "." + f.name)
		}
		if len(*f.v) > 1024 {
			return core.Dataset{}, BadRequest("%s.%s must be at most 1024 characters", dsf, f.name)
		}
	}
	return core.Dataset{Namespace: *b.NamespaceName, Bucket: *b.BucketName, Object: *b.ObjectName}, nil
}

func prefixErr(field string, err error) error {
	if ae, ok := err.(*Error); ok {
		return &Error{ae.Status, ae.Code, field + ": " + ae.Message}
	}
	return err
}

// ParseTrainingConfig validates a trainingConfig (raw JSON, null or absent
// for the LoRA defaults) for a base model with numLayers layers (0:
// unknown) and returns it with every default filled in. Each failure is a
// 400 naming the field and the rule.
func ParseTrainingConfig(raw json.RawMessage, numLayers int) (core.TrainingConfig, error) {
	var b trainingConfigBody
	if !isNull(raw) {
		if err := DecodeJSON(raw, &b); err != nil {
			return core.TrainingConfig{}, prefixErr(tcf, err)
		}
		if b.TrainingConfigType == nil {
			return core.TrainingConfig{}, Missing(tcf + ".trainingConfigType")
		}
	} else {
		b.TrainingConfigType = ptr(core.TrainingConfigLoRA)
	}
	c := core.TrainingConfig{Type: *b.TrainingConfigType}
	if err := oneOf(tcf+".trainingConfigType", c.Type, core.TrainingConfigTFew, core.TrainingConfigLoRA, core.TrainingConfigVanilla); err != nil {
		return c, err
	}
	isLoRA, isVanilla := c.Type == core.TrainingConfigLoRA, c.Type == core.TrainingConfigVanilla
	for _, f := range []struct {
		name string
		set  bool
	}{{"loraR", b.LoraR != nil}, {"loraAlpha", b.LoraAlpha != nil}, {"loraDropout", b.LoraDropout != nil}} {
		if f.set && !isLoRA {
			return c, BadRequest("%s.%s applies only to trainingConfigType %s, not %s", tcf, f.name, core.TrainingConfigLoRA, c.Type)
		}
	}
	if b.NumOfLastLayers != nil && !isVanilla {
		return c, BadRequest("%s.numOfLastLayers applies only to trainingConfigType %s, not %s", tcf, core.TrainingConfigVanilla, c.Type)
	}

	var err error
	intIn := func(name string, p *int, def, lo, hi int) int {
		if p == nil || err != nil {
			return def
		}
		if *p < lo || *p > hi {
			err = BadRequest("%s.%s must be from %d to %d, got %d", tcf, name, lo, hi, *p)
		}
		return *p
	}
	c.TotalTrainingEpochs = intIn("totalTrainingEpochs", b.TotalTrainingEpochs, DefaultEpochs, 1, MaxEpochs)
	c.TrainingBatchSize = intIn("trainingBatchSize", b.TrainingBatchSize, DefaultBatchSize, 1, MaxBatchSize)
	c.EarlyStoppingPatience = intIn("earlyStoppingPatience", b.EarlyStoppingPatience, DefaultPatience, 0, MaxPatience)
	c.LogModelMetricsIntervalInSteps = intIn("logModelMetricsIntervalInSteps", b.LogModelMetricsIntervalInSteps, DefaultLogInterval, 0, MaxLogInterval)
	if err != nil {
		return c, err
	}

	lr := DefaultTFewLR
	switch c.Type {
	case core.TrainingConfigLoRA:
		lr = DefaultLoRALR
	case core.TrainingConfigVanilla:
		lr = DefaultVanillaLR
	}
	c.LearningRate = lr
	if p := b.LearningRate; p != nil {
		if !(*p > 0 && *p <= 1) || math.IsNaN(*p) {
			return c, BadRequest("%s.learningRate must be in (0, 1], got %v", tcf, *p)
		}
		c.LearningRate = *p
	}
	c.EarlyStoppingThreshold = DefaultThreshold
	if p := b.EarlyStoppingThreshold; p != nil {
		if !(*p >= 0 && *p <= 1) {
			return c, BadRequest("%s.earlyStoppingThreshold must be from 0 to 1, got %v", tcf, *p)
		}
		c.EarlyStoppingThreshold = *p
	}

	switch c.Type {
	case core.TrainingConfigLoRA:
		c.LoraR = intIn("loraR", b.LoraR, DefaultLoraR, 1, MaxLoraR)
		c.LoraAlpha = intIn("loraAlpha", b.LoraAlpha, DefaultLoraAlpha, 1, MaxLoraAlpha)
		if err != nil {
			return c, err
		}
		c.LoraDropout = DefaultLoraDropout
		if p := b.LoraDropout; p != nil {
			if !(*p >= 0 && *p < 1) {
				return c, BadRequest("%s.loraDropout must be in [0, 1), got %v", tcf, *p)
			}
			c.LoraDropout = *p
		}
	case core.TrainingConfigVanilla:
		hi := numLayers
		if hi <= 0 {
			hi = math.MaxInt32
		}
		def := DefaultLastLayers
		if numLayers > 0 && numLayers < def {
			def = numLayers
		}
		if b.NumOfLastLayers != nil && (*b.NumOfLastLayers < 1 || *b.NumOfLastLayers > hi) {
			if numLayers > 0 {
				return c, BadRequest("%s.numOfLastLayers must be from 1 to the base model's layer count %d, got %d", tcf, numLayers, *b.NumOfLastLayers)
			}
			return c, BadRequest("%s.numOfLastLayers must be at least 1, got %d", tcf, *b.NumOfLastLayers)
		}
		c.NumOfLastLayers = intIn("numOfLastLayers", b.NumOfLastLayers, def, 1, hi)
	}
	return c, err
}

// checkText validates the optional descriptive fields of a create or update.
func checkText(displayName, description, vendor, version *string) error {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"displayName", displayName, maxDisplayNameBytes}, {"description", description, maxDescBytes}, {"vendor", vendor, maxDisplayNameBytes}, {"version", version, maxDisplayNameBytes}} {
		if f.v == nil {
			continue
		}
		if err := validName(f.name, *f.v, f.max); err != nil {
			return err
		}
	}
	if displayName != nil && strings.TrimSpace(*displayName) == "" {
		return BadRequest("displayName must not be empty")
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fmtCaps(c []string) string { return fmt.Sprint(c) }
