package storage

import (
	"context"
	"fmt"
	"math"

	"github.com/acidic-go/acidic"
)

// TopicQueues tells clients that an operator changed the controls of a
// queue (paused, resumed or scaled it); it has no payload. A client that
// hears it reads the controls of the queues it works again
// (Controls.QueueControls): the rows decide, the hint only says when to look.
const TopicQueues = "queues"

// MaxQueueWorkers is the most workers per node a queue may be scaled to: the
// largest value the store keeps (a 32-bit integer).
const MaxQueueWorkers = math.MaxInt32

// QueuePauseParams pauses or resumes a queue.
type QueuePauseParams struct {
	Queue string
	// Paused pauses the queue when true and resumes it when false.
	Paused bool
}

// Validate returns acidic.ErrInvalid naming the problem, or nil.
func (p QueuePauseParams) Validate() error { return CheckName("queue", p.Queue) }

// QueueScaleParams sets the workers per node of a queue.
type QueueScaleParams struct {
	Queue string
	// MaxWorkers is the number of jobs of the queue each node runs at once,
	// 1 to MaxQueueWorkers; 0 removes the setting, and each node goes back
	// to its own configuration.
	MaxWorkers int
}

// Validate returns acidic.ErrInvalid naming the problem, or nil.
func (p QueueScaleParams) Validate() error {
	if err := CheckName("queue", p.Queue); err != nil {
		return err
	}
	if p.MaxWorkers < 0 || p.MaxWorkers > MaxQueueWorkers {
		return fmt.Errorf("%w: workers %d for queue %q: a queue runs 1 to %d workers per node (0 removes the setting)",
			acidic.ErrInvalid, p.MaxWorkers, p.Queue, MaxQueueWorkers)
	}
	return nil
}

// QueueControlsParams selects the controls to read.
type QueueControlsParams struct {
	// Queues are the queues to read; nil reads every known queue.
	Queues []string
}

// Validate returns acidic.ErrInvalid naming the problem, or nil.
func (p QueueControlsParams) Validate() error { return checkQueues(p.Queues) }

// QueueRegisterParams names the queues a node works.
type QueueRegisterParams struct {
	Queues []string
}

// Validate returns acidic.ErrInvalid naming the problem, or nil.
func (p QueueRegisterParams) Validate() error { return checkQueues(p.Queues) }

func checkQueues(queues []string) error {
	for _, q := range queues {
		if err := CheckName("queue", q); err != nil {
			return err
		}
	}
	return nil
}

// Controls stores the controls of queues. Every write is checked with its
// params' Validate method first (acidic.ErrInvalid, nothing written).
type Controls interface {
	// QueuePause pauses or resumes a known queue, notifies TopicQueues (on
	// commit) and returns the queue's controls as written. Pausing a paused
	// queue keeps its PausedAt. A queue that is not known is
	// ErrUnknownQueue, and nothing is written: a queue is known when it has
	// controls (a node registered it, or it was controlled before) or jobs
	// that have not finished.
	QueuePause(ctx context.Context, p QueuePauseParams) (*acidic.QueueControl, error)
	// QueueScale sets (or, with 0, removes) the workers per node of a known
	// queue, notifies TopicQueues (on commit) and returns the queue's
	// controls as written. An unknown queue is ErrUnknownQueue, as for
	// QueuePause.
	QueueScale(ctx context.Context, p QueueScaleParams) (*acidic.QueueControl, error)
	// QueueControls returns the controls of the known queues among
	// p.Queues (all known queues when nil), by queue name. A known queue
	// no operator controlled has Paused false and MaxWorkers 0.
	QueueControls(ctx context.Context, p QueueControlsParams) ([]*acidic.QueueControl, error)
	// QueueRegister makes the given queues known, leaving the controls of
	// those already known as they are. A client registers the queues it
	// works when it starts.
	QueueRegister(ctx context.Context, p QueueRegisterParams) error
}
