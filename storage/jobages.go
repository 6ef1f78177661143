package storage

import (
	"context"
	"time"
)

// JobAges tells how long jobs have been waiting for a worker.
type JobAges interface {
	// JobQueueAges returns, for each queue that has jobs that could run
	// now (available, or scheduled or retryable and due), how many there
	// are and how long the oldest of them has waited since it became due,
	// on the store's clock; by queue name. A queue with no such job is left
	// out.
	JobQueueAges(ctx context.Context, p JobQueueAgesParams) ([]QueueAge, error)
}

// JobQueueAgesParams are the arguments of JobAges.JobQueueAges (none yet).
type JobQueueAgesParams struct{}

// QueueAge is how long the jobs of one queue that could run now have
// waited.
type QueueAge struct {
	Queue string
	// Available counts the queue's jobs that could run now.
	Available int64
	// OldestDueAt is the earliest due time (ScheduledAt) among them.
	OldestDueAt time.Time
	// OldestAge is how long the oldest of them has waited: the store's
	// clock at the read less OldestDueAt.
	OldestAge time.Duration
}
