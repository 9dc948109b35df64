package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantryml/gantry/internal/core"
	"github.com/gantryml/gantry/internal/store"
)

// RetryTokenTTL is how long a retry token is remembered.
const RetryTokenTTL = 24 * time.Hour

// GetRetryToken returns the token stored within RetryTokenTTL before now,
// or ErrNotFound.
func (o *ops) GetRetryToken(ctx context.Context, tenancyID, token string, now time.Time) (*core.RetryToken, error) {
	return getJSON[core.RetryToken](ctx, o, "get retry token "+token,
		`SELECT body FROM retry_tokens WHERE tenancy_id = ? AND token = ? AND time_created > ?`,
		tenancyID, token, nanos(now.Add(-RetryTokenTTL)))
}

// PutRetryToken stores a token (a zero TimeCreated becomes now);
// ErrConflict when the tenancy has that token from within the last
// RetryTokenTTL. An older one is replaced.
func (o *ops) PutRetryToken(ctx context.Context, t *core.RetryToken) error {
	what := "put retry token " + t.Token
	if t.Token == "" {
		return errMissing("put retry token", "Token")
	}
	v := *t
	v.TimeCreated = normOrNow(v.TimeCreated)
	body, err := marshal(what, &v)
	if err != nil {
		return err
	}
	err = o.write(ctx, func(q querier) error {
		if _, err := q.exec(ctx, `DELETE FROM retry_tokens WHERE tenancy_id = ? AND token = ? AND time_created <= ?`,
			v.TenancyID, v.Token, nanos(v.TimeCreated.Add(-RetryTokenTTL))); err != nil {
			return err
		}
		_, err := q.exec(ctx, `INSERT INTO retry_tokens (tenancy_id, token, time_created, body) VALUES (?, ?, ?, ?)`,
			v.TenancyID, v.Token, nanos(v.TimeCreated), body)
		return err
	})
	if err != nil {
		return o.classify(err, what)
	}
	*t = v
	return nil
}

// PurgeRetryTokens deletes the tokens stored RetryTokenTTL or more before
// now and returns how many.
func (o *ops) PurgeRetryTokens(ctx context.Context, now time.Time) (int, error) {
	return o.purge(ctx, "purge retry tokens", `DELETE FROM retry_tokens WHERE time_created <= ?`, nanos(now.Add(-RetryTokenTTL)))
}

// purge runs one DELETE and returns how many rows it removed.
func (o *ops) purge(ctx context.Context, what, query string, args ...any) (int, error) {
	var n int64
	err := o.write(ctx, func(q querier) error {
		res, err := q.exec(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), o.classify(err, what)
}

const jobCols = `id, kind, queue, resource_id, work_request_id, tenancy_id, state, attempt, payload,
	lease_owner, lease_expires, cancel_requested, error, time_created, time_updated`

// scanJob reads one row of jobCols.
func scanJob(row interface{ Scan(...any) error }) (*core.Job, error) {
	var j core.Job
	var expires, created, updated int64
	var cancel int
	if err := row.Scan(&j.ID, &j.Kind, &j.Queue, &j.ResourceID, &j.WorkRequestID, &j.TenancyID, &j.State, &j.Attempt,
		&j.Payload, &j.LeaseOwner, &expires, &cancel, &j.Error, &created, &updated); err != nil {
		return nil, err
	}
	j.LeaseExpires, j.TimeCreated, j.TimeUpdated = fromNanos(expires), fromNanos(created), fromNanos(updated)
	j.CancelRequested = cancel != 0
	if len(j.Payload) == 0 {
		j.Payload = nil
	}
	return &j, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// EnqueueJob stores a new job, queued, with Attempt 0, no lease, no
// cancel request and TimeCreated (when zero) and TimeUpdated set; an empty
// ID is filled in. The stored values are written back to j. ErrConflict
// when the ID is taken.
func (o *ops) EnqueueJob(ctx context.Context, j *core.Job) error {
	if j.Kind == "" {
		return errMissing("enqueue job", "Kind")
	}
	v := *j
	if v.ID == "" {
		v.ID = newID("job-")
	}
	v.State, v.Attempt, v.LeaseOwner, v.LeaseExpires, v.CancelRequested, v.Error = core.JobQueued, 0, "", time.Time{}, false, ""
	v.TimeCreated = normOrNow(v.TimeCreated)
	v.TimeUpdated = now()
	payload := v.Payload
	if payload == nil {
		payload = []byte{}
	}
	if err := o.insert(ctx, "enqueue job "+v.ID, `INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.Kind, v.Queue, v.ResourceID, v.WorkRequestID, v.TenancyID, v.State, v.Attempt, payload,
		v.LeaseOwner, int64(0), 0, v.Error, nanos(v.TimeCreated), nanos(v.TimeUpdated)); err != nil {
		return err
	}
	*j = v
	return nil
}

// GetJob returns a job by ID, or ErrNotFound.
func (o *ops) GetJob(ctx context.Context, id string) (*core.Job, error) {
	var j *core.Job
	err := o.read(ctx, func(q querier) error {
		var err error
		j, err = scanJob(q.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
		return err
	})
	return j, o.classify(err, "get job "+id)
}

// GetJobByResource returns the newest job acting on a resource, or ErrNotFound.
func (o *ops) GetJobByResource(ctx context.Context, resourceID string) (*core.Job, error) {
	var j *core.Job
	err := o.read(ctx, func(q querier) error {
		var err error
		j, err = scanJob(q.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE resource_id = ? ORDER BY seq DESC LIMIT 1`, resourceID))
		return err
	})
	return j, o.classify(err, "get job of resource "+resourceID)
}

// SetQueueConcurrency sets how many of a queue's jobs may run at once
// (0 pauses the queue). A queue never set runs one job at a time, except
// the default queue "", which has no limit until one is set.
func (o *ops) SetQueueConcurrency(ctx context.Context, queue string, n int) error {
	what := fmt.Sprintf("set concurrency of queue %q", queue)
	if n < 0 {
		return fmt.Errorf("%s: %d is negative", what, n)
	}
	err := o.write(ctx, func(q querier) error {
		_, err := q.exec(ctx, `INSERT INTO job_queues (name, concurrency) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency`, queue, n)
		return err
	})
	return o.classify(err, what)
}

// unlimited stands for "no limit" in SQL comparisons.
const unlimited = 1 << 30

// ClaimJob takes the oldest ready job of a queue with a free slot: queued,
// or running with a lease that expired before now (its worker died). A
// job whose lease expired while a cancel was requested is finished as
// canceled instead. Claims are serialised (SQLite's single writer, or
// the dialect's LockClaims), so no job is claimed twice and no queue
// exceeds its concurrency.
func (o *ops) ClaimJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (*core.Job, error) {
	if owner == "" {
		return nil, errMissing("claim job", "owner")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("claim job: lease %v must be positive", lease)
	}
	nowN := nanos(now)
	var claimed *core.Job
	err := o.write(ctx, func(q querier) error {
		if o.db.d.LockClaims != "" {
			if _, err := q.exec(ctx, o.db.d.LockClaims); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		// A dead worker's job that was asked to cancel is done.
		if _, err := q.exec(ctx, `UPDATE jobs SET state = ?, error = ?, lease_owner = '', lease_expires = 0, time_updated = ?
			WHERE state = ? AND lease_expires < ? AND cancel_requested <> 0`,
			core.JobCanceled, "canceled", nanos(time.Now()), core.JobRunning, nowN); err != nil {
			return err
		}
		var id string
		err := q.queryRow(ctx, `SELECT j.id FROM jobs j LEFT JOIN job_queues jq ON jq.name = j.queue
			WHERE (j.state = ? OR (j.state = ? AND j.lease_expires < ?))
			AND (SELECT COUNT(*) FROM jobs r WHERE r.queue = j.queue AND r.state = ? AND r.lease_expires >= ?)
				< COALESCE(jq.concurrency, CASE WHEN j.queue = '' THEN ? ELSE 1 END)
			ORDER BY j.seq LIMIT 1`,
			core.JobQueued, core.JobRunning, nowN, core.JobRunning, nowN, unlimited).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // commit the cancellations above
		}
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE jobs SET state = ?, lease_owner = ?, lease_expires = ?, attempt = attempt + 1, time_updated = ?
			WHERE id = ?`, core.JobRunning, owner, nanos(now.Add(lease)), nanos(time.Now()), id); err != nil {
			return err
		}
		claimed, err = scanJob(q.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return nil, o.classify(err, "claim job")
	}
	if claimed == nil {
		return nil, fmt.Errorf("claim job: no job ready: %w", store.ErrNotFound)
	}
	return claimed, nil
}

// ownJob runs an UPDATE ... WHERE id = ? AND lease_owner = ? AND state =
// 'running' and returns ErrNotFound when it changed nothing.
func (o *ops) ownJob(ctx context.Context, what, set string, args []any, id, owner string) error {
	err := o.write(ctx, func(q querier) error {
		res, err := q.exec(ctx, `UPDATE jobs SET `+set+` WHERE id = ? AND lease_owner = ? AND state = ?`,
			append(args, id, owner, core.JobRunning)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("job %s is not running under %s: %w", id, owner, store.ErrNotFound)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return o.classify(err, what)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ExtendLease renews a running job's lease to until; ErrNotFound when
// owner no longer holds it (it finished, was released, or another worker
// reclaimed it after the lease expired).
func (o *ops) ExtendLease(ctx context.Context, id, owner string, until time.Time) error {
	return o.ownJob(ctx, "extend lease of job "+id, `lease_expires = ?, time_updated = ?`,
		[]any{nanos(until), nanos(time.Now())}, id, owner)
}

// FinishJob ends a job owner holds in a terminal state (succeeded, failed
// or canceled) with errText; ErrNotFound when owner does not hold it.
func (o *ops) FinishJob(ctx context.Context, id, owner, state, errText string) error {
	what := fmt.Sprintf("finish job %s as %s", id, state)
	switch state {
	case core.JobSucceeded, core.JobFailed, core.JobCanceled:
	default:
		return fmt.Errorf("%s: state must be %s, %s or %s", what, core.JobSucceeded, core.JobFailed, core.JobCanceled)
	}
	return o.ownJob(ctx, what, `state = ?, error = ?, lease_expires = 0, time_updated = ?`,
		[]any{state, errText, nanos(time.Now())}, id, owner)
}

// RequestCancel flags a job for cancellation and returns it: a queued job
// is canceled at once; a running one keeps running until its worker sees
// the flag; a finished one is returned unchanged. ErrNotFound when missing.
func (o *ops) RequestCancel(ctx context.Context, id string) (*core.Job, error) {
	var j *core.Job
	err := o.write(ctx, func(q querier) error {
		t := nanos(time.Now())
		if _, err := q.exec(ctx, `UPDATE jobs SET cancel_requested = 1, time_updated = ? WHERE id = ? AND state = ?`,
			t, id, core.JobRunning); err != nil {
			return err
		}
		if _, err := q.exec(ctx, `UPDATE jobs SET cancel_requested = 1, state = ?, error = ?, time_updated = ? WHERE id = ? AND state = ?`,
			core.JobCanceled, "canceled before it started", t, id, core.JobQueued); err != nil {
			return err
		}
		var err error
		j, err = scanJob(q.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
		return err
	})
	return j, o.classify(err, "request cancel of job "+id)
}

// ReleaseJob puts a running job owner holds back to queued (graceful
// shutdown), undoing its claim's Attempt increment so the next claim runs
// it with the same Attempt; ErrNotFound when owner does not hold it.
func (o *ops) ReleaseJob(ctx context.Context, id, owner string) error {
	return o.ownJob(ctx, "release job "+id, `state = ?, lease_owner = '', lease_expires = 0, attempt = attempt - 1, time_updated = ?`,
		[]any{core.JobQueued, nanos(time.Now())}, id, owner)
}

// ExpireJobLeases ends the leases of owner's running jobs: see store.Jobs.
func (o *ops) ExpireJobLeases(ctx context.Context, owner string) (int, error) {
	if owner == "" {
		return 0, errMissing("expire job leases", "owner")
	}
	var n int64
	err := o.write(ctx, func(q querier) error {
		res, err := q.exec(ctx, `UPDATE jobs SET lease_expires = 0, time_updated = ? WHERE state = ? AND lease_owner = ?`,
			nanos(time.Now()), core.JobRunning, owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, o.classify(err, "expire job leases of "+owner)
	}
	return int(n), nil
}

// PurgeJobs deletes the jobs in a terminal state whose last change was
// before before, and returns how many.
func (o *ops) PurgeJobs(ctx context.Context, before time.Time) (int, error) {
	return o.purge(ctx, "purge jobs", `DELETE FROM jobs WHERE state IN (?, ?, ?) AND time_updated < ?`,
		core.JobSucceeded, core.JobFailed, core.JobCanceled, nanos(before))
}

// CountJobs counts a queue's jobs in the given states; "" counts every
// queue, and no states count every state.
func (o *ops) CountJobs(ctx context.Context, queue string, states ...string) (int, error) {
	var w where
	if queue != "" {
		w.add("queue = ?", queue)
	}
	if len(states) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", ")
		args := make([]any, len(states))
		for i, s := range states {
			args[i] = s
		}
		w.add("state IN ("+marks+")", args...)
	}
	var n int
	err := o.read(ctx, func(q querier) error {
		return q.queryRow(ctx, `SELECT COUNT(*) FROM jobs`+w.sql(), w.args...).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count jobs: %w", err)
	}
	return n, nil
}
