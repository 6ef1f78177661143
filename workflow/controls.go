package workflow

import (
	"context"

	"github.com/acidic-go/acidic"
)

// The queue controls of the engine's queue client (see queue.Client): they
// act on every node that works the queue, workflow runs and plain jobs alike.

// PauseQueue pauses a queue on every node: no run or job of it starts until
// ResumeQueue; steps already running finish. See queue.Client.PauseQueue.
func (e *Engine) PauseQueue(ctx context.Context, queue string) (*acidic.QueueControl, error) {
	return e.q.PauseQueue(ctx, queue)
}

// ResumeQueue lets every node work a paused queue again. See
// queue.Client.ResumeQueue.
func (e *Engine) ResumeQueue(ctx context.Context, queue string) (*acidic.QueueControl, error) {
	return e.q.ResumeQueue(ctx, queue)
}

// ScaleQueue sets how many jobs of a queue each node runs at once, in place
// of its configured MaxWorkers. See queue.Client.ScaleQueue.
func (e *Engine) ScaleQueue(ctx context.Context, queue string, workers int) (*acidic.QueueControl, error) {
	return e.q.ScaleQueue(ctx, queue, workers)
}

// ResetQueueScale sends every node back to its configured MaxWorkers for a
// queue. See queue.Client.ResetQueueScale.
func (e *Engine) ResetQueueScale(ctx context.Context, queue string) (*acidic.QueueControl, error) {
	return e.q.ResetQueueScale(ctx, queue)
}

// QueueControls returns the stored controls of the given queues, or of every
// known queue when none is given. See queue.Client.QueueControls.
func (e *Engine) QueueControls(ctx context.Context, queues ...string) ([]*acidic.QueueControl, error) {
	return e.q.QueueControls(ctx, queues...)
}
