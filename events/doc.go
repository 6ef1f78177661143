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
// Events are signals for observability, not records. An event that
// describes a write is published once the transaction that made it has
// committed (except JobCompleted, published when the work function returned
// nil, just before its batched write): never for a transaction that rolled
// back, and once for a transaction run again after a serialization failure
// or a lost connection. A process that dies may not publish them, and when a COMMIT's
// answer is lost (acidic.ErrCommitUnknown) the event of a write that did
// commit may be missing; it is never doubled. Read the database for the
// truth.
//
// Per job attempt, the job's event comes first, then the events of what
// its end did: a job discarded or cancelled for good publishes
// JobDiscarded or JobCancelled, then RunFinished of the run that ended with
// it; a rescue publishes its JobRescued events, then those RunFinished.
// A run its own step ended (steps.Cancel, a failure no retry can fix)
// publishes RunFinished after its job's JobCancelled or JobDiscarded too.
// And queue.Client.CancelTx inside a transaction of the caller's, whose
// COMMIT the engine cannot see, publishes the RunFinished of a run that
// ends with the job when CancelTx runs (called from a job's work function:
// once that attempt ended).
package events
