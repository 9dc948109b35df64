package api

import (
	"time"

	"github.com/gantryml/gantry/internal/core"
)

// The JSON shapes below mirror the oci-go-sdk generativeai types field for
// field (the SDK is the contract). Polymorphic values carry their
// discriminator: trainingConfig by trainingConfigType, trainingDataset by
// datasetType, modelMetrics by modelMetricsType, capacity by capacityType.

// timeFormat is how times are written: RFC 3339 in UTC with milliseconds,
// as OCI services write them.
const timeFormat = "2006-01-02T15:04:05.000Z"

// apiTime is a time written in timeFormat.
type apiTime time.Time

func (t apiTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeFormat) + `"`), nil
}

func timePtr(t *time.Time) *apiTime {
	if t == nil || t.IsZero() {
		return nil
	}
	a := apiTime(*t)
	return &a
}

func timeVal(t time.Time) *apiTime {
	if t.IsZero() {
		return nil
	}
	a := apiTime(t)
	return &a
}

type modelJSON struct {
	ID                  string                    `json:"id"`
	CompartmentID       string                    `json:"compartmentId"`
	Capabilities        []string                  `json:"capabilities"`
	LifecycleState      string                    `json:"lifecycleState"`
	TimeCreated         *apiTime                  `json:"timeCreated"`
	Type                string                    `json:"type"`
	Description         *string                   `json:"description,omitempty"`
	LifecycleDetails    *string                   `json:"lifecycleDetails,omitempty"`
	Vendor              *string                   `json:"vendor,omitempty"`
	Version             *string                   `json:"version,omitempty"`
	DisplayName         *string                   `json:"displayName,omitempty"`
	TimeUpdated         *apiTime                  `json:"timeUpdated,omitempty"`
	BaseModelID         *string                   `json:"baseModelId,omitempty"`
	FineTuneDetails     *fineTuneDetailsJSON      `json:"fineTuneDetails,omitempty"`
	ModelMetrics        *modelMetricsJSON         `json:"modelMetrics,omitempty"`
	IsLongTermSupported *bool                     `json:"isLongTermSupported,omitempty"`
	TimeDeprecated      *apiTime                  `json:"timeDeprecated,omitempty"`
	FreeformTags        map[string]string         `json:"freeformTags"`
	DefinedTags         map[string]map[string]any `json:"definedTags"`
	SystemTags          map[string]map[string]any `json:"systemTags,omitempty"`
}

type fineTuneDetailsJSON struct {
	TrainingDataset      datasetJSON         `json:"trainingDataset"`
	DedicatedAiClusterID string              `json:"dedicatedAiClusterId"`
	TrainingConfig       *trainingConfigJSON `json:"trainingConfig,omitempty"`
}

type datasetJSON struct {
	DatasetType   string `json:"datasetType"`
	NamespaceName string `json:"namespaceName"`
	BucketName    string `json:"bucketName"`
	ObjectName    string `json:"objectName"`
}

// trainingConfigJSON is every training config type's fields; the ones that
// do not apply to TrainingConfigType are nil and omitted.
type trainingConfigJSON struct {
	TrainingConfigType             string   `json:"trainingConfigType"`
	TotalTrainingEpochs            *int     `json:"totalTrainingEpochs,omitempty"`
	LearningRate                   *float64 `json:"learningRate,omitempty"`
	TrainingBatchSize              *int     `json:"trainingBatchSize,omitempty"`
	EarlyStoppingPatience          *int     `json:"earlyStoppingPatience,omitempty"`
	EarlyStoppingThreshold         *float64 `json:"earlyStoppingThreshold,omitempty"`
	LogModelMetricsIntervalInSteps *int     `json:"logModelMetricsIntervalInSteps,omitempty"`
	LoraR                          *int     `json:"loraR,omitempty"`
	LoraAlpha                      *int     `json:"loraAlpha,omitempty"`
	LoraDropout                    *float64 `json:"loraDropout,omitempty"`
	NumOfLastLayers                *int     `json:"numOfLastLayers,omitempty"`
}

type modelMetricsJSON struct {
	ModelMetricsType string  `json:"modelMetricsType"`
	FinalAccuracy    float64 `json:"finalAccuracy"`
	FinalLoss        float64 `json:"finalLoss"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ptr[T any](v T) *T { return &v }

func tagsOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func definedOrEmpty(m map[string]map[string]any) map[string]map[string]any {
	if m == nil {
		return map[string]map[string]any{}
	}
	return m
}

// toModelJSON renders m; compartmentID is shown for base models, which
// belong to no compartment (OCI shows the one asked about).
func toModelJSON(m *core.Model, compartmentID string) modelJSON {
	j := modelJSON{
		ID:               m.ID,
		CompartmentID:    m.CompartmentID,
		Capabilities:     m.Capabilities,
		LifecycleState:   m.LifecycleState,
		TimeCreated:      timeVal(m.TimeCreated),
		Type:             m.Type,
		Description:      strPtr(m.Description),
		LifecycleDetails: strPtr(m.LifecycleDetails),
		Vendor:           strPtr(m.Vendor),
		Version:          strPtr(m.Version),
		DisplayName:      strPtr(m.DisplayName),
		TimeUpdated:      timeVal(m.TimeUpdated),
		BaseModelID:      strPtr(m.BaseModelID),
		TimeDeprecated:   timePtr(m.TimeDeprecated),
		FreeformTags:     tagsOrEmpty(m.FreeformTags),
		DefinedTags:      definedOrEmpty(m.DefinedTags),
		SystemTags:       m.SystemTags,
	}
	if j.Capabilities == nil {
		j.Capabilities = []string{}
	}
	if m.Type == core.ModelTypeBase {
		j.CompartmentID = compartmentID
		j.IsLongTermSupported = ptr(m.IsLongTermSupported)
	}
	if f := m.FineTuneDetails; f != nil {
		j.FineTuneDetails = &fineTuneDetailsJSON{
			TrainingDataset: datasetJSON{
				DatasetType:   core.DatasetTypeObjectStorage,
				NamespaceName: f.Dataset.Namespace,
				BucketName:    f.Dataset.Bucket,
				ObjectName:    f.Dataset.Object,
			},
			DedicatedAiClusterID: f.DedicatedAiClusterID,
			TrainingConfig:       toTrainingConfigJSON(f.TrainingConfig),
		}
	}
	if mm := m.Metrics; mm != nil {
		j.ModelMetrics = &modelMetricsJSON{ModelMetricsType: mm.Type, FinalAccuracy: mm.FinalAccuracy, FinalLoss: mm.FinalLoss}
	}
	return j
}

func toTrainingConfigJSON(c core.TrainingConfig) *trainingConfigJSON {
	j := &trainingConfigJSON{
		TrainingConfigType:             c.Type,
		TotalTrainingEpochs:            ptr(c.TotalTrainingEpochs),
		LearningRate:                   ptr(c.LearningRate),
		TrainingBatchSize:              ptr(c.TrainingBatchSize),
		EarlyStoppingPatience:          ptr(c.EarlyStoppingPatience),
		EarlyStoppingThreshold:         ptr(c.EarlyStoppingThreshold),
		LogModelMetricsIntervalInSteps: ptr(c.LogModelMetricsIntervalInSteps),
	}
	switch c.Type {
	case core.TrainingConfigLoRA:
		j.LoraR, j.LoraAlpha, j.LoraDropout = ptr(c.LoraR), ptr(c.LoraAlpha), ptr(c.LoraDropout)
	case core.TrainingConfigVanilla:
		j.NumOfLastLayers = ptr(c.NumOfLastLayers)
	}
	return j
}

type clusterJSON struct {
	ID               string                    `json:"id"`
	Type             string                    `json:"type"`
	CompartmentID    string                    `json:"compartmentId"`
	TimeCreated      *apiTime                  `json:"timeCreated"`
	LifecycleState   string                    `json:"lifecycleState"`
	UnitCount        int                       `json:"unitCount"`
	UnitShape        string                    `json:"unitShape"`
	DisplayName      *string                   `json:"displayName,omitempty"`
	Description      *string                   `json:"description,omitempty"`
	TimeUpdated      *apiTime                  `json:"timeUpdated,omitempty"`
	LifecycleDetails *string                   `json:"lifecycleDetails,omitempty"`
	Capacity         *clusterCapacityJSON      `json:"capacity,omitempty"`
	FreeformTags     map[string]string         `json:"freeformTags"`
	DefinedTags      map[string]map[string]any `json:"definedTags"`
	SystemTags       map[string]map[string]any `json:"systemTags,omitempty"`
}

// clusterCapacityJSON is a HOSTING cluster's capacity (capacityType
// HOSTING_CAPACITY, the only type the SDK knows). Gantry hosts no
// endpoints, so the used capacity is always 0.
type clusterCapacityJSON struct {
	CapacityType          string `json:"capacityType"`
	TotalEndpointCapacity int    `json:"totalEndpointCapacity"`
	UsedEndpointCapacity  int    `json:"usedEndpointCapacity"`
}

// endpointsPerHostingUnit is how many endpoints one HOSTING unit serves, as OCI documents it.
const endpointsPerHostingUnit = 50

func toClusterJSON(c *core.Cluster) clusterJSON {
	j := clusterJSON{
		ID:               c.ID,
		Type:             c.Type,
		CompartmentID:    c.CompartmentID,
		TimeCreated:      timeVal(c.TimeCreated),
		LifecycleState:   c.LifecycleState,
		UnitCount:        c.UnitCount,
		UnitShape:        c.UnitShape,
		DisplayName:      strPtr(c.DisplayName),
		Description:      strPtr(c.Description),
		TimeUpdated:      timeVal(c.TimeUpdated),
		LifecycleDetails: strPtr(c.LifecycleDetails),
		FreeformTags:     tagsOrEmpty(c.FreeformTags),
		DefinedTags:      definedOrEmpty(c.DefinedTags),
		SystemTags:       c.SystemTags,
	}
	if c.Type == core.ClusterHosting {
		j.Capacity = &clusterCapacityJSON{CapacityType: "HOSTING_CAPACITY", TotalEndpointCapacity: c.UnitCount * endpointsPerHostingUnit}
	}
	return j
}

type workRequestJSON struct {
	OperationType   string                    `json:"operationType"`
	Status          string                    `json:"status"`
	ID              string                    `json:"id"`
	CompartmentID   string                    `json:"compartmentId"`
	Resources       []workRequestResourceJSON `json:"resources"`
	PercentComplete float64                   `json:"percentComplete"`
	TimeAccepted    *apiTime                  `json:"timeAccepted"`
	TimeStarted     *apiTime                  `json:"timeStarted,omitempty"`
	TimeFinished    *apiTime                  `json:"timeFinished,omitempty"`
}

type workRequestResourceJSON struct {
	EntityType string `json:"entityType"`
	ActionType string `json:"actionType"`
	Identifier string `json:"identifier"`
	EntityURI  string `json:"entityUri,omitempty"`
}

func toWorkRequestJSON(w *core.WorkRequest) workRequestJSON {
	j := workRequestJSON{
		OperationType:   w.OperationType,
		Status:          w.Status,
		ID:              w.ID,
		CompartmentID:   w.CompartmentID,
		Resources:       make([]workRequestResourceJSON, 0, len(w.Resources)),
		PercentComplete: w.PercentComplete,
		TimeAccepted:    timeVal(w.TimeAccepted),
		TimeStarted:     timePtr(w.TimeStarted),
		TimeFinished:    timePtr(w.TimeFinished),
	}
	for _, r := range w.Resources {
		j.Resources = append(j.Resources, workRequestResourceJSON{EntityType: r.EntityType, ActionType: r.ActionType, Identifier: r.Identifier, EntityURI: r.EntityURI})
	}
	return j
}

type workRequestLogJSON struct {
	Message   string   `json:"message"`
	Timestamp *apiTime `json:"timestamp"`
}

type workRequestErrorJSON struct {
	Code      string   `json:"code"`
	Message   string   `json:"message"`
	Timestamp *apiTime `json:"timestamp"`
}

type collection[T any] struct {
	Items []T `json:"items"`
}
