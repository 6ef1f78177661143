package steps

import (
	"context"
	"errors"

	"github.com/acidic-go/acidic/queue"
)

// AwaitOptions tune an await step.
type AwaitOptions struct {
	// ContinueOnFailure lets the run go on when a child run or an awaited
	// job fails for good or is cancelled; the next step sees the failure in
	// Children (or ChildJobs). By default such a child fails the run with
	// ErrChildFailed naming it.
	ContinueOnFailure bool
}

// ErrChildFailed fails a run whose awaited child run failed for good or was
// cancelled, or whose awaited queue job was discarded or cancelled.
var ErrChildFailed = errors.New("steps: awaited child run did not succeed")

// Await returns a step that stages the child runs children returns (they may
// depend on the arguments and state: dynamic awaits) and parks the run until
// every child has finished. A step that returns no children does not park.
func Await[A, S any](name string, children func(ctx context.Context, sc *Context[A, S]) ([]RunRequest, error), opts AwaitOptions) Step[A, S] {
	return Step[A, S]{name: name, await: &opts, fn: func(ctx context.Context, sc *Context[A, S]) error {
		reqs, err := children(ctx, sc)
		if err != nil {
			return err
		}
		return sc.Await(ctx, reqs...)
	}}
}

// AwaitRuns returns a step that awaits a fixed list of child runs.
func AwaitRuns[A, S any](name string, opts AwaitOptions, reqs ...RunRequest) Step[A, S] {
	return Await(name, func(context.Context, *Context[A, S]) ([]RunRequest, error) { return reqs, nil }, opts)
}

// AwaitJobsFunc returns a step that stages the queue jobs jobs returns (any
// kinds, any queues; they may depend on the arguments and state) and parks
// the run until every job has ended; see Context.AwaitJobs. A step that
// returns no jobs does not park.
func AwaitJobsFunc[A, S any](name string, jobs func(ctx context.Context, sc *Context[A, S]) ([]queue.EnqueueParams, error), opts AwaitOptions) Step[A, S] {
	return Step[A, S]{name: name, await: &opts, fn: func(ctx context.Context, sc *Context[A, S]) error {
		params, err := jobs(ctx, sc)
		if err != nil {
			return err
		}
		_, err = sc.AwaitJobs(ctx, params...)
		return err
	}}
}

// AwaitJobs returns a step that awaits a fixed list of queue jobs, made with
// a queue.Kind's Params:
//
//	steps.AwaitJobs[Args, State]("notify", steps.AwaitOptions{},
//		sendEmail.Params(EmailArgs{To: "ada@example.com"}, queue.EnqueueOptions{}),
//		sendSMS.Params(SMSArgs{To: "+15550100"}, queue.EnqueueOptions{Queue: "sms"}))
//
// Inside a workflow's list the types must be given, as above; the builder
// (workflow.Workflow.AwaitJobs) and a Binder's AwaitJobs need none.
func AwaitJobs[A, S any](name string, opts AwaitOptions, jobs ...queue.EnqueueParams) Step[A, S] {
	return AwaitJobsFunc(name, func(context.Context, *Context[A, S]) ([]queue.EnqueueParams, error) { return jobs, nil }, opts)
}
