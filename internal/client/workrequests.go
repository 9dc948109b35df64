package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/generativeai"
	"golang.org/x/term"
)

// terminalStatus reports whether a work request status is final.
func terminalStatus(s generativeai.OperationStatusEnum) bool {
	switch s {
	case generativeai.OperationStatusSucceeded, generativeai.OperationStatusFailed, generativeai.OperationStatusCanceled:
		return true
	}
	return false
}

// WorkRequestListParams filter ListWorkRequests.
type WorkRequestListParams struct {
	CompartmentID string
	ResourceID    string
	Status        string
	Limit         int
	All           bool // follow opc-next-page to the end
}

// GetWorkRequest prints a work request; with wait, it first polls until
// the work request is finished, drawing progress on Err.
func (c *Client) GetWorkRequest(ctx context.Context, id string, wait bool) error {
	var wr generativeai.WorkRequest
	if wait {
		w, err := c.WaitWorkRequest(ctx, id)
		if err != nil {
			return err
		}
		wr = *w
	} else {
		r, err := c.GenAI.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &id})
		if err != nil {
			return wrap(fmt.Sprintf("get work request %s", id), err)
		}
		wr = r.WorkRequest
	}
	if err := Print(c.out(), c.Format, wr, nil); err != nil {
		return err
	}
	if wait && wr.Status == generativeai.OperationStatusFailed {
		return fmt.Errorf("work request %s FAILED: %s", id, c.workRequestErrorText(ctx, id))
	}
	return nil
}

// ListWorkRequests prints work requests of a compartment.
func (c *Client) ListWorkRequests(ctx context.Context, p WorkRequestListParams) error {
	req := generativeai.ListWorkRequestsRequest{CompartmentId: c.compartment(p.CompartmentID)}
	if p.ResourceID != "" {
		req.ResourceId = &p.ResourceID
	}
	if p.Status != "" {
		req.Status = generativeai.ListWorkRequestsStatusEnum(p.Status)
	}
	if p.Limit > 0 {
		req.Limit = &p.Limit
	}
	var items []generativeai.WorkRequestSummary
	for {
		r, err := c.GenAI.ListWorkRequests(ctx, req)
		if err != nil {
			return wrap("list work requests", err)
		}
		items = append(items, r.Items...)
		if !p.All || r.OpcNextPage == nil || *r.OpcNextPage == "" {
			break
		}
		req.Page = r.OpcNextPage
	}
	if items == nil {
		items = []generativeai.WorkRequestSummary{}
	}
	return Print(c.out(), c.Format, items, nil)
}

// WorkRequestLogs returns all log lines of a work request, in order.
func (c *Client) WorkRequestLogs(ctx context.Context, id string) ([]generativeai.WorkRequestLogEntry, error) {
	req := generativeai.ListWorkRequestLogsRequest{WorkRequestId: &id, Limit: intPtr(1000)}
	var out []generativeai.WorkRequestLogEntry
	for {
		r, err := c.GenAI.ListWorkRequestLogs(ctx, req)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list work request logs %s", id), err)
		}
		out = append(out, r.Items...)
		if r.OpcNextPage == nil || *r.OpcNextPage == "" {
			return out, nil
		}
		req.Page = r.OpcNextPage
	}
}

// PrintWorkRequestLogs prints a work request's logs; with wait, it
// follows them (printing each new line as text on Out) until the work
// request is finished.
func (c *Client) PrintWorkRequestLogs(ctx context.Context, id string, wait bool) error {
	if !wait {
		logs, err := c.WorkRequestLogs(ctx, id)
		if err != nil {
			return err
		}
		if logs == nil {
			logs = []generativeai.WorkRequestLogEntry{}
		}
		return Print(c.out(), c.Format, logs, nil)
	}
	seen := 0
	for {
		wr, err := c.GenAI.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &id})
		if err != nil {
			return wrap(fmt.Sprintf("get work request %s", id), err)
		}
		logs, err := c.WorkRequestLogs(ctx, id)
		if err != nil {
			return err
		}
		for _, l := range logs[min(seen, len(logs)):] {
			ts := ""
			if l.Timestamp != nil {
				ts = l.Timestamp.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(c.out(), "%s %s\n", ts, deref(l.Message))
		}
		seen = max(seen, len(logs))
		if terminalStatus(wr.Status) {
			if wr.Status == generativeai.OperationStatusFailed {
				return fmt.Errorf("work request %s FAILED: %s", id, c.workRequestErrorText(ctx, id))
			}
			return nil
		}
		if err := c.sleep(ctx); err != nil {
			return err
		}
	}
}

// PrintWorkRequestErrors prints a work request's errors.
func (c *Client) PrintWorkRequestErrors(ctx context.Context, id string) error {
	r, err := c.GenAI.ListWorkRequestErrors(ctx, generativeai.ListWorkRequestErrorsRequest{WorkRequestId: &id, Limit: intPtr(1000)})
	if err != nil {
		return wrap(fmt.Sprintf("list work request errors %s", id), err)
	}
	items := r.Items
	if items == nil {
		items = []generativeai.WorkRequestError{}
	}
	return Print(c.out(), c.Format, items, nil)
}

func (c *Client) workRequestErrorText(ctx context.Context, id string) string {
	r, err := c.GenAI.ListWorkRequestErrors(ctx, generativeai.ListWorkRequestErrorsRequest{WorkRequestId: &id})
	if err != nil || len(r.Items) == 0 {
		return "no error details"
	}
	var msgs []string
	for _, e := range r.Items {
		msgs = append(msgs, deref(e.Code)+": "+deref(e.Message))
	}
	return strings.Join(msgs, "; ")
}

func (c *Client) sleep(ctx context.Context) error {
	d := c.PollInterval
	if d <= 0 {
		d = time.Second
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// WaitWorkRequest polls a work request until it is finished and returns
// it. On a terminal Err it draws a progress bar; otherwise it prints a
// line when the status changes.
func (c *Client) WaitWorkRequest(ctx context.Context, id string) (*generativeai.WorkRequest, error) {
	bar := newProgress(c.errw())
	defer bar.done()
	for {
		r, err := c.GenAI.GetWorkRequest(ctx, generativeai.GetWorkRequestRequest{WorkRequestId: &id})
		if err != nil {
			return nil, wrap(fmt.Sprintf("get work request %s", id), err)
		}
		pct := 0.0
		if r.PercentComplete != nil {
			pct = float64(*r.PercentComplete)
		}
		bar.update(string(r.OperationType), string(r.Status), pct)
		if terminalStatus(r.Status) {
			return &r.WorkRequest, nil
		}
		if err := c.sleep(ctx); err != nil {
			return nil, err
		}
	}
}

// progress draws a work request's progress: a redrawn bar on a terminal,
// a line per status change elsewhere.
type progress struct {
	w          io.Writer
	tty        bool
	lastStatus string
	lastPct    float64
	drawn      bool
	barWidth   int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, barWidth: 30}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 60 {
			p.barWidth = min(50, width-50)
		}
	}
	return p
}

func (p *progress) update(op, status string, pct float64) {
	pct = min(max(pct, 0), 100)
	if p.tty {
		filled := int(pct / 100 * float64(p.barWidth))
		fmt.Fprintf(p.w, "\r%s [%s%s] %5.1f%% %-12s", op, strings.Repeat("#", filled), strings.Repeat(" ", p.barWidth-filled), pct, status)
		p.drawn = true
		return
	}
	// Off a terminal, a line per status change and per 10 points of progress.
	if status != p.lastStatus || pct >= p.lastPct+10 || (pct == 100 && p.lastPct != 100) {
		fmt.Fprintf(p.w, "%s %s %.0f%%\n", op, status, pct)
		p.lastStatus, p.lastPct = status, pct
	}
}

func (p *progress) done() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func intPtr(n int) *int { return &n }

// Progress draws a work request's progress on w: a bar redrawn in place
// on a terminal, otherwise a line per status change and per 10 points.
type Progress struct{ p *progress }

// NewProgress returns a progress display writing to w.
func NewProgress(w io.Writer) *Progress { return &Progress{newProgress(w)} }

// Update shows an operation's status and percent complete.
func (p *Progress) Update(op, status string, pct float64) { p.p.update(op, status, pct) }

// Done ends the display (a newline after a terminal bar).
func (p *Progress) Done() { p.p.done() }
