package acidic

import "time"

// QueueControl is what operators set for one queue, obeyed by every node
// that works it.
type QueueControl struct {
	Queue string
	// Paused: no node fetches jobs of the queue; the jobs already running
	// finish.
	Paused bool
	// PausedAt is when the queue was paused; nil while it is not.
	PausedAt *time.Time
	// MaxWorkers is how many jobs of the queue each node runs at once; 0
	// when not set, and each node runs as many as its own configuration
	// says.
	MaxWorkers int
	// CreatedAt is when the queue became known here (a node registered it,
	// or an operator first controlled it); UpdatedAt is the last change.
	CreatedAt, UpdatedAt time.Time
}

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
