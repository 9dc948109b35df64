package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// latencyBuckets are the upper bounds (seconds) of the request latency histogram.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type opStatus struct {
	op     string
	status int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

// Metrics counts requests by operation and status and their latencies,
// and writes them with the job counts in the Prometheus text format.
type Metrics struct {
	mu        sync.Mutex
	requests  map[opStatus]uint64
	latencies map[string]*histogram
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{requests: map[opStatus]uint64{}, latencies: map[string]*histogram{}}
}

// Observe records one request.
func (m *Metrics) Observe(op string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[opStatus{op, status}]++
	h := m.latencies[op]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		m.latencies[op] = h
	}
	s := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, s)
	h.counts[i]++
	h.sum += s
	h.n++
}

func label(v string) string {
	return strconv.Quote(v)
}

// jobStates are the states exported in gantry_jobs.
var jobStates = []string{core.JobQueued, core.JobRunning, core.JobSucceeded, core.JobFailed, core.JobCanceled}

// Write writes the metrics in the Prometheus text exposition format;
// jobs (may be nil) is asked for the current job counts.
func (m *Metrics) Write(ctx context.Context, w io.Writer, jobs store.Jobs) error {
	var b strings.Builder
	m.mu.Lock()
	keys := make([]opStatus, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].op != keys[j].op {
			return keys[i].op < keys[j].op
		}
		return keys[i].status < keys[j].status
	})
	b.WriteString("# HELP gantry_http_requests_total HTTP requests by API operation and status code.\n# TYPE gantry_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "gantry_http_requests_total{operation=%s,code=\"%d\"} %d\n", label(k.op), k.status, m.requests[k])
	}
	ops := make([]string, 0, len(m.latencies))
	for op := range m.latencies {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	b.WriteString("# HELP gantry_http_request_duration_seconds HTTP request latency by API operation.\n# TYPE gantry_http_request_duration_seconds histogram\n")
	for _, op := range ops {
		h := m.latencies[op]
		var cum uint64
		for i, ub := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "gantry_http_request_duration_seconds_bucket{operation=%s,le=\"%s\"} %d\n", label(op), strconv.FormatFloat(ub, 'g', -1, 64), cum)
		}
		cum += h.counts[len(latencyBuckets)]
		fmt.Fprintf(&b, "gantry_http_request_duration_seconds_bucket{operation=%s,le=\"+Inf\"} %d\n", label(op), cum)
		fmt.Fprintf(&b, "gantry_http_request_duration_seconds_sum{operation=%s} %g\n", label(op), h.sum)
		fmt.Fprintf(&b, "gantry_http_request_duration_seconds_count{operation=%s} %d\n", label(op), h.n)
	}
	m.mu.Unlock()
	if jobs != nil {
		b.WriteString("# HELP gantry_jobs Background jobs by state.\n# TYPE gantry_jobs gauge\n")
		for _, st := range jobStates {
			n, err := jobs.CountJobs(ctx, "", st)
			if err != nil {
				return fmt.Errorf("count %s jobs: %w", st, err)
			}
			fmt.Fprintf(&b, "gantry_jobs{state=%s} %d\n", label(st), n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
