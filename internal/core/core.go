// Package core holds Gantry's domain types: the resources of the OCI
// Generative AI API (models, dedicated AI clusters, work requests), the
// identities that own them (tenancies, users, API keys, compartments) and
// the durable jobs that act on them. It depends on nothing but the
// standard library; storage, HTTP and training adapt to these types.
//
// Enumerated values are the API's strings (for example "ACTIVE",
// "FINE_TUNING"), so a type here maps to its JSON shape without tables.
package core

import "time"

// Model lifecycle states, as the API spells them.
const (
	ModelCreating = "CREATING"
	ModelActive   = "ACTIVE"
	ModelDeleting = "DELETING"
	ModelDeleted  = "DELETED"
	ModelFailed   = "FAILED"
)

// Model types and capabilities.
const (
	ModelTypeBase   = "BASE"
	ModelTypeCustom = "CUSTOM"

	CapabilityTextGeneration    = "TEXT_GENERATION"
	CapabilityTextSummarization = "TEXT_SUMMARIZATION"
	CapabilityTextEmbeddings    = "TEXT_EMBEDDINGS"
	CapabilityFineTune          = "FINE_TUNE"
	CapabilityChat              = "CHAT"
	CapabilityTextRerank        = "TEXT_RERANK"
	MetricsTypeChat             = "CHAT_MODEL_METRICS"
	MetricsTypeTextGeneration   = "TEXT_GENERATION_MODEL_METRICS"
	DatasetTypeObjectStorage    = "OBJECT_STORAGE"
	TrainingConfigLoRA          = "LORA_TRAINING_CONFIG"
	TrainingConfigTFew          = "TFEW_TRAINING_CONFIG"
	TrainingConfigVanilla       = "VANILLA_TRAINING_CONFIG"
)

// Model is a base model from the catalog or a custom (fine-tuned) model.
// Base models have an empty TenancyID and are visible to every tenancy.
type Model struct {
	ID                  string
	TenancyID           string
	CompartmentID       string
	DisplayName         string
	Description         string
	Vendor              string
	Version             string
	Type                string // ModelTypeBase or ModelTypeCustom
	Capabilities        []string
	LifecycleState      string
	LifecycleDetails    string
	BaseModelID         string
	FineTuneDetails     *FineTuneDetails
	Metrics             *ModelMetrics
	IsLongTermSupported bool
	TimeCreated         time.Time
	TimeUpdated         time.Time
	TimeDeprecated      *time.Time
	FreeformTags        map[string]string
	DefinedTags         map[string]map[string]any
	SystemTags          map[string]map[string]any
	// ETag changes on every stored change; the store assigns it.
	ETag string
}

// FineTuneDetails is how a custom model is trained.
type FineTuneDetails struct {
	DedicatedAiClusterID string
	Dataset              Dataset
	TrainingConfig       TrainingConfig
}

// Dataset names the training data object (datasetType OBJECT_STORAGE).
type Dataset struct {
	Namespace string
	Bucket    string
	Object    string
}

// TrainingConfig is the fine-tuning method and its hyperparameters with
// every default filled in. Fields that do not apply to Type are zero.
type TrainingConfig struct {
	Type                           string // TrainingConfig* constants
	TotalTrainingEpochs            int
	LearningRate                   float64
	TrainingBatchSize              int
	EarlyStoppingPatience          int
	EarlyStoppingThreshold         float64
	LogModelMetricsIntervalInSteps int
	LoraR                          int     // LoRA only
	LoraAlpha                      int     // LoRA only
	LoraDropout                    float64 // LoRA only
	NumOfLastLayers                int     // Vanilla only
}

// ModelMetrics are a trained model's final validation metrics.
type ModelMetrics struct {
	Type          string // MetricsTypeChat or MetricsTypeTextGeneration
	FinalAccuracy float64
	FinalLoss     float64
}

// Dedicated AI cluster types and states.
const (
	ClusterFineTuning = "FINE_TUNING"
	ClusterHosting    = "HOSTING"

	ClusterCreating = "CREATING"
	ClusterActive   = "ACTIVE"
	ClusterUpdating = "UPDATING"
	ClusterDeleting = "DELETING"
	ClusterDeleted  = "DELETED"
	ClusterFailed   = "FAILED"
)

// Cluster is a dedicated AI cluster. For FINE_TUNING clusters UnitCount is
// how many fine-tuning jobs run at once.
type Cluster struct {
	ID               string
	TenancyID        string
	CompartmentID    string
	DisplayName      string
	Description      string
	Type             string // ClusterFineTuning or ClusterHosting
	UnitShape        string
	UnitCount        int
	LifecycleState   string
	LifecycleDetails string
	TimeCreated      time.Time
	TimeUpdated      time.Time
	FreeformTags     map[string]string
	DefinedTags      map[string]map[string]any
	SystemTags       map[string]map[string]any
	ETag             string
}

// Work request operation types and statuses, as the API spells them.
const (
	OpCreateModel         = "CREATE_MODEL"
	OpDeleteModel         = "DELETE_MODEL"
	OpMoveModel           = "MOVE_MODEL"
	OpCreateCluster       = "CREATE_DEDICATED_AI_CLUSTER"
	OpUpdateCluster       = "UPDATE_DEDICATED_AI_CLUSTER"
	OpDeleteCluster       = "DELETE_DEDICATED_AI_CLUSTER"
	OpMoveCluster         = "MOVE_DEDICATED_AI_CLUSTER"
	WorkRequestAccepted   = "ACCEPTED"
	WorkRequestInProgress = "IN_PROGRESS"
	WorkRequestWaiting    = "WAITING"
	WorkRequestSucceeded  = "SUCCEEDED"
	WorkRequestFailed     = "FAILED"
	WorkRequestCanceling  = "CANCELING"
	WorkRequestCanceled   = "CANCELED"
	ActionCreated         = "CREATED"
	ActionUpdated         = "UPDATED"
	ActionDeleted         = "DELETED"
	ActionInProgress      = "IN_PROGRESS"
	ActionRelated         = "RELATED"
	ActionFailed          = "FAILED"
	EntityTypeModel       = "model"
	EntityTypeCluster     = "dedicatedaicluster"
)

// WorkRequest tracks an asynchronous operation.
type WorkRequest struct {
	ID              string
	TenancyID       string
	CompartmentID   string
	OperationType   string
	Status          string
	Resources       []WorkRequestResource
	PercentComplete float64
	TimeAccepted    time.Time
	TimeStarted     *time.Time
	TimeFinished    *time.Time
	TimeUpdated     time.Time
}

// WorkRequestResource is a resource a work request acts on.
type WorkRequestResource struct {
	EntityType string
	ActionType string
	Identifier string
	EntityURI  string
}

// WorkRequestLog is one log line of a work request.
type WorkRequestLog struct {
	Message   string
	Timestamp time.Time
}

// WorkRequestError is one error of a work request.
type WorkRequestError struct {
	Code      string
	Message   string
	Timestamp time.Time
}

// Tenancy is an account. Its ID is also the OCID of its root compartment,
// and Namespace is its object storage namespace.
type Tenancy struct {
	ID          string
	Name        string
	Namespace   string
	TimeCreated time.Time
}

// User is an identity inside a tenancy.
type User struct {
	ID          string
	TenancyID   string
	Name        string
	TimeCreated time.Time
}

// APIKey is a user's RSA public key for request signatures, found by the
// keyId triple tenancy/user/fingerprint.
type APIKey struct {
	TenancyID    string
	UserID       string
	Fingerprint  string // colon-separated MD5 of the DER public key, as OCI prints it
	PublicKeyPEM string
	TimeCreated  time.Time
}

// Compartment groups resources inside a tenancy. The root compartment is
// the tenancy itself and is not stored as a Compartment.
type Compartment struct {
	ID             string
	TenancyID      string
	ParentID       string
	Name           string
	Description    string
	LifecycleState string
	TimeCreated    time.Time
}

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCanceled  = "canceled"
)

// Job is a durable unit of background work (training a model, bringing a
// cluster up). Jobs of one Queue run at most that queue's concurrency at
// once, oldest first; a running job holds a lease that its worker renews,
// and a job whose lease expired (its process died) is claimed again.
type Job struct {
	ID              string
	Kind            string // e.g. "fine-tune", "cluster-create"
	Queue           string // a fine-tuning cluster's ID; "" for the default queue
	ResourceID      string
	WorkRequestID   string
	TenancyID       string
	State           string
	Attempt         int
	Payload         []byte // kind-specific JSON
	LeaseOwner      string
	LeaseExpires    time.Time
	CancelRequested bool
	Error           string
	TimeCreated     time.Time
	TimeUpdated     time.Time
}

// RetryToken remembers a create request made with opc-retry-token, so the
// same token and body within 24 hours return the first result.
type RetryToken struct {
	TenancyID     string
	Token         string
	Operation     string
	BodyHash      string // hex SHA-256 of the request body
	ResourceID    string
	WorkRequestID string
	TimeCreated   time.Time
}
