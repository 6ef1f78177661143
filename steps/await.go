package steps

import (
	"context"
	"errors"
)

// AwaitOptions tune an await step.
type AwaitOptions struct {
	// ContinueOnFailure lets the run go on when a child fails for good or is
	// cancelled; the next step sees the failure in Children. By default such
	// a child fails the run with ErrChildFailed naming it.
	ContinueOnFailure bool
}

// ErrChildFailed fails a run whose awaited child run failed for good or was
// cancelled.
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
