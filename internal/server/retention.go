package server

import (
	"context"
	"fmt"
	"time"
)

// Defaults of the retention sweep (Config.RetentionInterval, Config.JobRetention).
const (
	DefaultRetentionInterval = time.Hour
	DefaultJobRetention      = 7 * 24 * time.Hour
)

// Purge deletes what the deployment no longer needs as of now: retry
// tokens past their 24 hours, and jobs that ended more than
// Config.JobRetention before now. Work requests, with their logs and
// errors (a model's metric history), are kept. It returns how many tokens
// and jobs it deleted.
func (s *Server) Purge(ctx context.Context, now time.Time) (tokens, jobs int, err error) {
	tokens, err = s.Store.PurgeRetryTokens(ctx, now)
	if err != nil {
		return 0, 0, fmt.Errorf("purge retry tokens: %w", err)
	}
	keep := s.cfg.JobRetention
	if keep <= 0 {
		keep = DefaultJobRetention
	}
	jobs, err = s.Store.PurgeJobs(ctx, now.Add(-keep))
	if err != nil {
		return tokens, 0, fmt.Errorf("purge finished jobs: %w", err)
	}
	return tokens, jobs, nil
}

// runRetention purges at start and then every RetentionInterval until ctx
// is done; a negative interval disables it. Failures are logged and
// retried at the next tick.
func (s *Server) runRetention(ctx context.Context) {
	every := s.cfg.RetentionInterval
	if every < 0 {
		return
	}
	if every == 0 {
		every = DefaultRetentionInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		tokens, jobs, err := s.Purge(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("retention sweep", "err", err)
		case tokens > 0 || jobs > 0:
			s.log.Info("retention sweep", "retryTokens", tokens, "finishedJobs", jobs)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
