package queue

import (
	"encoding/json"

	"github.com/acidic-go/acidic"
)

// Preview returns the job an EnqueueTx of p would insert, without reading
// or writing anything: the kind's options applied (KindOptions), the args
// and meta encoded, the queue, priority, attempts and schedule resolved
// (ScheduledAt is the client's clock plus the delay; now for a job due at
// once), the unique key computed. The database has not given it an ID or a
// creation time, and whether a unique job would be a duplicate is not
// known. Its error is the one EnqueueTx would return for p (see
// ValidateEnqueue). acidictest builds the jobs it performs in memory with
// it.
func (c *Client) Preview(p EnqueueParams) (*acidic.Job, error) {
	now := c.cfg.Now()
	in, _, err := c.insertFor(p, now)
	if err != nil {
		return nil, err
	}
	job := &acidic.Job{
		Queue:        in.Queue,
		Kind:         in.Kind,
		Args:         in.Args,
		RunID:        in.RunID,
		State:        in.State,
		Priority:     in.Priority,
		MaxAttempts:  in.MaxAttempts,
		ScheduledAt:  in.ScheduledAt,
		Meta:         in.Meta,
		UniqueKey:    in.UniqueKey,
		UniqueStates: in.UniqueStates,
	}
	if job.ScheduledAt.IsZero() {
		job.ScheduledAt = now
	}
	if job.ScheduledAt.After(now) {
		job.State = acidic.JobScheduled
	}
	if len(job.Meta) == 0 {
		job.Meta = json.RawMessage("{}")
	}
	return job, nil
}
