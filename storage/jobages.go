package storage

import (
	"context"

	"github.com/acidic-go/acidic"
)

// JobAges tells how long jobs have been waiting for a worker.
type JobAges interface {
	// JobQueueAges returns, for each queue that has jobs that could run
	// now (available, or scheduled or retryable and due), how many there
	// are and how long the oldest of them has waited since it became due,
	// on the store's clock; by queue name. A queue with no such job is left
	// out.
	JobQueueAges(ctx context.Context, p JobQueueAgesParams) ([]acidic.QueueAge, error)
}

// JobQueueAgesParams are the arguments of JobAges.JobQueueAges (none yet).
type JobQueueAgesParams struct{}
