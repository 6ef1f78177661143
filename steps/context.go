package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// Env is what the engine gives a step besides its arguments and state. Tests
// of a step function may build one by hand with NewContext.
type Env struct {
	// Tx is the step's transaction.
	Tx storage.Tx
	// RunID is the run's id; Workflow its workflow's name.
	RunID    uuid.UUID
	Workflow string
	// Step is the step's name.
	Step string
	// Attempt is the job attempt executing the step, from 1.
	Attempt int
	// Cursor is the position inside a for-each step.
	Cursor int64
	// Logger receives the step's logs.
	Logger *slog.Logger
	// Iterating is true inside a for-each step: the idempotency key then
	// names the item too.
	Iterating bool
	// Enqueue stages a job in Tx; see Context.Enqueue.
	Enqueue func(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (*acidic.Job, error)
	// EnqueueRun stages a workflow run in Tx, as a child of this run and
	// step when awaited is true; see Context.EnqueueRun and Context.Await.
	EnqueueRun func(ctx context.Context, req RunRequest, awaited bool) (uuid.UUID, error)
	// AwaitJobs stages queue jobs in Tx that this run and step await; see
	// Context.AwaitJobs.
	AwaitJobs func(ctx context.Context, jobs []queue.EnqueueParams) ([]*acidic.Job, error)
	// Publish stages an outbox message in Tx; see Context.Publish. Nil
	// stages it with Tx.OutboxInsert as it is (the engine's applies its
	// publish hooks first).
	Publish func(ctx context.Context, msg storage.OutboxInsert) error
}

// RunRequest asks for a workflow run to be enqueued from a step.
type RunRequest struct {
	// Workflow is the registered workflow's name.
	Workflow string
	// Args are the run's arguments, encoded to JSON.
	Args any
	// Key sets the run's idempotency key, namespaced per workflow as
	// workflow.EnqueueOptions.Key is; empty uses the workflow's strategy.
	Key string
	// Queue overrides the workflow's queue.
	Queue string
	// State is the run's initial persisted state, as
	// workflow.EnqueueOptions.State is.
	State any
}

// Context is what a step's function receives: the run's arguments, its
// persisted state, and the transaction the step commits in.
type Context[A, S any] struct {
	// Args are the run's arguments. Treat them as read-only.
	Args A
	// State is the run's persisted state. Changes made by a step are saved
	// when the step commits and discarded when it fails.
	State *S

	env      Env
	result   json.RawMessage
	next     int64
	awaiting int
	// awaitingJobs counts the queue jobs staged with AwaitJobs.
	awaitingJobs int
}

// NewContext returns a step context. The engine makes one for every step; call
// it yourself to unit-test a step function.
func NewContext[A, S any](env Env, args A, state *S) *Context[A, S] {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if state == nil {
		state = new(S)
	}
	return &Context[A, S]{Args: args, State: state, env: env, next: env.Cursor}
}

// Tx is the step's SERIALIZABLE transaction. SQL runs your own statements
// in it on any driver; for SQL of one database, postgres.PgxTx(sc.Tx())
// returns the pgx.Tx and sqlite.SQLTx(sc.Tx()) the SQLite transaction.
// What runs in it commits with the step, or not at all. The transaction
// begins at its first use, so a step that does not touch it holds no
// connection (and on SQLite no lock) while it runs. The engine commits it;
// to roll it back, return an error.
func (c *Context[A, S]) Tx() storage.Tx { return c.env.Tx }

// SQL runs your own statements in the step's transaction, the same on
// every driver: storage.SQLOf(sc.Tx()). Your writes commit with the step
// and its progress, or not at all. See storage.SQL for the SQL and the Go
// types that work on both SQLite and PostgreSQL.
func (c *Context[A, S]) SQL() storage.SQL { return storage.SQLOf(c.env.Tx) }

// RunID is the id of the run.
func (c *Context[A, S]) RunID() uuid.UUID { return c.env.RunID }

// Step is the name of the running step.
func (c *Context[A, S]) Step() string { return c.env.Step }

// Attempt is the number of the job attempt running the step, from 1.
func (c *Context[A, S]) Attempt() int { return c.env.Attempt }

// Logger returns a logger that tags lines with the run and step.
func (c *Context[A, S]) Logger() *slog.Logger {
	return c.env.Logger.With("run", c.env.RunID, "workflow", c.env.Workflow, "step", c.env.Step)
}

// IdempotencyKey is a key stable across every retry of this step of this run
// (and, in a for-each step, of this item). Pass it to outside systems that
// accept one, such as a payment gateway's Idempotency-Key header, so a step
// that crashed after its outside call can safely make the call again.
func (c *Context[A, S]) IdempotencyKey() string {
	key := c.env.RunID.String() + "/" + c.env.Step
	if c.env.Iterating {
		key += "/" + strconv.FormatInt(c.env.Cursor, 10)
	}
	return key
}

// SetResult records v (as JSON) as the step's result in the step log. The
// result of the run's last step becomes the run's result.
func (c *Context[A, S]) SetResult(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("steps: encode result: %w", err)
	}
	c.result = b
	return nil
}

// Result is the result set with SetResult, or nil.
func (c *Context[A, S]) Result() json.RawMessage { return c.result }

// Enqueue stages a job in the step's transaction: it becomes visible to
// workers only if the step commits, and a step that fails leaves no job.
func (c *Context[A, S]) Enqueue(ctx context.Context, kind string, args any, opts queue.EnqueueOptions) (*acidic.Job, error) {
	if c.env.Enqueue == nil {
		return nil, fmt.Errorf("steps: this context cannot enqueue (no Env.Enqueue)")
	}
	return c.env.Enqueue(ctx, kind, args, opts)
}

// EnqueueRun stages a run of another workflow in the step's transaction: it
// exists only if the step commits. The run is independent of this one; use
// Await to wait for runs.
func (c *Context[A, S]) EnqueueRun(ctx context.Context, req RunRequest) (uuid.UUID, error) {
	if c.env.EnqueueRun == nil {
		return uuid.Nil, fmt.Errorf("steps: this context cannot enqueue runs (no Env.EnqueueRun)")
	}
	return c.env.EnqueueRun(ctx, req, false)
}

// Await stages child runs in the step's transaction and parks this run once
// the step commits: the next step runs after every child has finished, on
// whichever queues and workers the children ran. Children run in parallel.
// By default a child that fails for good (or is cancelled) fails this run;
// see AwaitOptions.
func (c *Context[A, S]) Await(ctx context.Context, reqs ...RunRequest) error {
	if c.env.EnqueueRun == nil {
		return fmt.Errorf("steps: this context cannot enqueue runs (no Env.EnqueueRun)")
	}
	if len(reqs) > 0 && c.awaitingJobs > 0 {
		return fmt.Errorf("%w: step %q awaits queue jobs and runs; await each in a step of its own", ErrInvalid, c.env.Step)
	}
	for _, r := range reqs {
		if _, err := c.env.EnqueueRun(ctx, r, true); err != nil {
			return err
		}
		c.awaiting++
	}
	return nil
}

// AwaitJobs stages queue jobs (of any kind, on any queue) in the step's
// transaction and parks this run once the step commits: the next step runs
// once every job has ended (completed, or failed for good, or was
// cancelled), exactly once, after the last. Jobs run in parallel, worked by
// whichever clients work their queues. By default a job that did not
// complete fails this run with ErrChildFailed; see AwaitOptions. Make the
// jobs with a queue.Kind's Params, so the compiler checks their arguments:
//
//	jobs, err := sc.AwaitJobs(ctx, sendEmail.Params(EmailArgs{To: to}, queue.EnqueueOptions{}))
//
// A unique job that already exists is awaited as it is (its Duplicate is
// set); should it end while this step commits, the run resumes at the
// queue's next maintenance pass rather than at once. A step awaits either jobs or runs (Await), not both: that is
// ErrInvalid, and the step fails. The next step reads what the jobs did
// with ChildJobs. It returns the jobs in the order of jobs.
func (c *Context[A, S]) AwaitJobs(ctx context.Context, jobs ...queue.EnqueueParams) ([]*acidic.Job, error) {
	if c.env.AwaitJobs == nil {
		return nil, fmt.Errorf("steps: this context cannot await jobs (no Env.AwaitJobs)")
	}
	if len(jobs) > 0 && c.awaiting > c.awaitingJobs {
		return nil, fmt.Errorf("%w: step %q awaits runs and queue jobs; await each in a step of its own", ErrInvalid, c.env.Step)
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	out, err := c.env.AwaitJobs(ctx, jobs)
	if err != nil {
		return nil, err
	}
	c.awaiting += len(jobs)
	c.awaitingJobs += len(jobs)
	return out, nil
}

// ChildJobs returns the queue jobs awaited by step awaitStep of this run
// (see AwaitJobs), by job id: each with the state it ended in and its
// errors, as they were when this run resumed. Jobs return no result; see
// acidic.AwaitedJob.
func (c *Context[A, S]) ChildJobs(ctx context.Context, awaitStep string) ([]*acidic.AwaitedJob, error) {
	return c.env.Tx.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: c.env.RunID, Step: awaitStep})
}

// Publish stages a message for a system outside the database (a broker, a
// webhook, a mailer) in the step's transaction. An outbox relay delivers it
// after the step commits, at least once, in order with the other messages of
// the same key; a step that fails leaves no message. The engine's publish
// hooks (workflow.Config.PublishHooks) see ctx: pass the step's, so that the
// message carries its trace context.
func (c *Context[A, S]) Publish(ctx context.Context, topic, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("steps: encode message: %w", err)
	}
	if topic == "" {
		return fmt.Errorf("steps: publish needs a topic")
	}
	msg := storage.OutboxInsert{Topic: topic, Key: key, Payload: b, RunID: c.env.RunID}
	if c.env.Publish != nil {
		return c.env.Publish(ctx, msg)
	}
	return c.env.Tx.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{msg}})
}

// Awaiting is how many child runs and queue jobs the step has staged with
// Await and AwaitJobs.
func (c *Context[A, S]) Awaiting() int { return c.awaiting }

// Children returns the runs awaited by step awaitStep of this run, with their
// states and results, oldest first. The step after an await step reads its
// children's results this way.
func (c *Context[A, S]) Children(ctx context.Context, awaitStep string) ([]*acidic.Run, error) {
	var out []*acidic.Run
	err := storage.EachRunPage(ctx, c.env.Tx, acidic.RunFilter{ParentRunID: c.env.RunID, ParentStep: awaitStep},
		func(page []*acidic.Run) error {
			out = append(out, page...)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Cursor is the position the step starts at inside a for-each step.
func (c *Context[A, S]) Cursor() int64 { return c.env.Cursor }

// NextCursor is the position saved when the step commits: the for-each
// step moves it past each item it processed.
func (c *Context[A, S]) NextCursor() int64 { return c.next }
