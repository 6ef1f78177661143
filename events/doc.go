// Package events is the engine's event stream: typed events for the end of
// every job attempt, every step and the changes of a run's life, delivered
// to subscribers without ever blocking the engine.
//
// Subscribe through queue.Client.Subscribe (job events) or
// workflow.Engine.Subscribe (job, step and run events). A subscriber gets a
// buffered channel, or a function called inline. A channel that is full
// drops the event: the drop is counted (Subscription.Dropped, Bus.Dropped)
// and the engine goes on. With no subscriber, publishing costs one atomic
// load and builds no event.
//
// Events are signals for observability, not records: they are published
// after the write they describe (except JobCompleted, published when the
// work function returned nil, just before its batched write), a process that
// dies may not publish them, and a write retried after a rollback may
// publish its event twice. Read the database for the truth.
package events
