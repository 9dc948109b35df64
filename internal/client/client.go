// Package client is the command-line client of a Gantry (or OCI) endpoint:
// it reads an OCI config file, talks to the Generative AI and Object
// Storage APIs through the oci-go-sdk clients, and prints results as the
// OCI CLI does ({"data": ...} JSON with kebab-case keys) or as a table.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/auth"
	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
)

// DefaultEndpoint is the endpoint used when neither --endpoint nor
// $GANTRY_ENDPOINT is set.
const DefaultEndpoint = "http://127.0.0.1:8080"

// Config says where and as whom the client connects. Zero fields take
// their defaults: ~/.oci/config, profile DEFAULT, $GANTRY_ENDPOINT or
// DefaultEndpoint.
type Config struct {
	ConfigFile string
	Profile    string
	Endpoint   string
	// Retry keeps the SDK's default retry policy; false sends each
	// request once, so errors are seen as the server sent them.
	Retry bool
}

// DefaultConfigFile is ~/.oci/config.
func DefaultConfigFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".oci", "config")
	}
	return filepath.Join(home, ".oci", "config")
}

// Client holds the SDK clients for one endpoint and identity.
type Client struct {
	GenAI     generativeai.GenerativeAiClient
	OS        objectstorage.ObjectStorageClient
	TenancyID string
	// Out receives results, Err progress; nil means os.Stdout and os.Stderr.
	Out, Err io.Writer
	// Format is "json" (the default) or "table".
	Format string
	// PollInterval is how often --wait polls; 0 means one second.
	PollInterval time.Duration

	namespace string
}

// New builds a client from cfg.
func New(cfg Config) (*Client, error) {
	if cfg.ConfigFile == "" {
		cfg.ConfigFile = DefaultConfigFile()
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = os.Getenv("GANTRY_ENDPOINT")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	cfg.Endpoint = strings.TrimRight(cfg.Endpoint, "/")
	prov, err := auth.ConfigProvider(cfg.ConfigFile, cfg.Profile)
	if err != nil {
		return nil, err
	}
	tenancy, err := prov.TenancyOCID()
	if err != nil {
		return nil, wrap(cfg.ConfigFile, err)
	}
	g, err := generativeai.NewGenerativeAiClientWithConfigurationProvider(prov)
	if err != nil {
		return nil, wrap("generative AI client", err)
	}
	o, err := objectstorage.NewObjectStorageClientWithConfigurationProvider(prov)
	if err != nil {
		return nil, wrap("object storage client", err)
	}
	g.Host, o.Host = cfg.Endpoint, cfg.Endpoint
	if !cfg.Retry {
		noRetry := common.NoRetryPolicy()
		g.BaseClient.Configuration.RetryPolicy = &noRetry
		o.BaseClient.Configuration.RetryPolicy = &noRetry
		g.BaseClient.Configuration.CircuitBreaker = common.NewCircuitBreaker(common.NoCircuitBreakerSetting())
		o.BaseClient.Configuration.CircuitBreaker = common.NewCircuitBreaker(common.NoCircuitBreakerSetting())
	}
	// Uploads and training downloads can take longer than the SDK's 60 s.
	o.HTTPClient = withTimeout(o.HTTPClient, 30*time.Minute)
	return &Client{GenAI: g, OS: o, TenancyID: tenancy}, nil
}

func (c *Client) out() io.Writer {
	if c.Out != nil {
		return c.Out
	}
	return os.Stdout
}

func (c *Client) errw() io.Writer {
	if c.Err != nil {
		return c.Err
	}
	return os.Stderr
}

// Namespace returns the caller's object storage namespace (cached).
func (c *Client) Namespace(ctx context.Context) (string, error) {
	if c.namespace != "" {
		return c.namespace, nil
	}
	r, err := c.OS.GetNamespace(ctx, objectstorage.GetNamespaceRequest{})
	if err != nil {
		return "", wrap("get namespace", err)
	}
	if r.Value == nil {
		return "", errors.New("get namespace: empty answer")
	}
	c.namespace = *r.Value
	return c.namespace, nil
}

// compartment returns id, or the tenancy (root compartment) when empty.
func (c *Client) compartment(id string) *string {
	if id == "" {
		id = c.TenancyID
	}
	return &id
}

// ServiceError is a concise form of an SDK service error: the status,
// OCI's code and message, and the request id to quote.
type ServiceError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	Op        string
}

// Error reads "op: status code: message (opc-request-id id)".
func (e *ServiceError) Error() string {
	s := fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (opc-request-id " + e.RequestID + ")"
	}
	return s
}

// wrap describes an SDK call's failure: a *ServiceError for service
// errors, the error with op as context otherwise.
func wrap(op string, err error) error {
	if se, ok := common.IsServiceError(err); ok {
		return &ServiceError{Status: se.GetHTTPStatusCode(), Code: se.GetCode(), Message: se.GetMessage(), RequestID: se.GetOpcRequestID(), Op: op}
	}
	return fmt.Errorf("%s: %w", op, err)
}
