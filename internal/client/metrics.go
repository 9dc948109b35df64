package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/oracle/oci-go-sdk/v65/generativeai"
)

// MetricPoint is one metrics line a fine-tuning job logs on its work
// request: a JSON object per log message, for example
// {"step":10,"epoch":1,"train_loss":2.1,"learning_rate":0.0002,"val_loss":2.3,"val_accuracy":0.41}.
type MetricPoint struct {
	Step         int      `json:"step"`
	Epoch        int      `json:"epoch"`
	TrainLoss    float64  `json:"train_loss"`
	LearningRate float64  `json:"learning_rate"`
	ValLoss      *float64 `json:"val_loss,omitempty"`
	ValAccuracy  *float64 `json:"val_accuracy,omitempty"`
}

// ParseMetricLine reads a metrics point from a log message: the JSON
// object in it (from its first '{') when it has a train_loss field.
func ParseMetricLine(msg string) (MetricPoint, bool) {
	i := strings.IndexByte(msg, '{')
	if i < 0 || !strings.Contains(msg[i:], `"train_loss"`) {
		return MetricPoint{}, false
	}
	var p MetricPoint
	if err := json.Unmarshal([]byte(msg[i:]), &p); err != nil {
		return MetricPoint{}, false
	}
	return p, true
}

// ModelMetrics collects the metric points logged by a model's
// CREATE_MODEL work request, in log order.
func (c *Client) ModelMetrics(ctx context.Context, id string) ([]MetricPoint, error) {
	m, err := c.GenAI.GetModel(ctx, generativeai.GetModelRequest{ModelId: &id})
	if err != nil {
		return nil, wrap(fmt.Sprintf("get model %s", id), err)
	}
	wrs, err := c.GenAI.ListWorkRequests(ctx, generativeai.ListWorkRequestsRequest{CompartmentId: m.CompartmentId, ResourceId: &id, Limit: intPtr(100)})
	if err != nil {
		return nil, wrap(fmt.Sprintf("list work requests of %s", id), err)
	}
	wrID := ""
	for _, w := range wrs.Items {
		if w.OperationType == generativeai.OperationTypeCreateModel {
			wrID = deref(w.Id)
			break
		}
	}
	if wrID == "" {
		return nil, fmt.Errorf("model %s has no CREATE_MODEL work request (base models have no training metrics)", id)
	}
	logs, err := c.WorkRequestLogs(ctx, wrID)
	if err != nil {
		return nil, err
	}
	var pts []MetricPoint
	for _, l := range logs {
		if p, ok := ParseMetricLine(deref(l.Message)); ok {
			pts = append(pts, p)
		}
	}
	return pts, nil
}

// PrintModelMetrics prints a model's training metrics as JSON lines
// (asJSON) or a table, and draws the loss curves to plotPath when set.
func (c *Client) PrintModelMetrics(ctx context.Context, id string, asJSON bool, plotPath string) error {
	pts, err := c.ModelMetrics(ctx, id)
	if err != nil {
		return err
	}
	if len(pts) == 0 {
		return fmt.Errorf("model %s logged no training metrics (yet)", id)
	}
	if asJSON {
		enc := json.NewEncoder(c.out())
		for _, p := range pts {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
	} else if err := writeMetricsTable(c.out(), pts); err != nil {
		return err
	}
	if plotPath != "" {
		if err := PlotLoss(plotPath, pts); err != nil {
			return err
		}
		fmt.Fprintf(c.errw(), "wrote %s\n", plotPath)
	}
	return nil
}

func writeMetricsTable(w io.Writer, pts []MetricPoint) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tEPOCH\tTRAIN-LOSS\tVAL-LOSS\tVAL-ACCURACY\tLEARNING-RATE")
	opt := func(v *float64) string {
		if v == nil {
			return ""
		}
		return fmt.Sprintf("%.4f", *v)
	}
	for _, p := range pts {
		fmt.Fprintf(tw, "%d\t%d\t%.4f\t%s\t%s\t%.3g\n", p.Step, p.Epoch, p.TrainLoss, opt(p.ValLoss), opt(p.ValAccuracy), p.LearningRate)
	}
	return tw.Flush()
}

var errNoPoints = errors.New("no metric points to plot")
