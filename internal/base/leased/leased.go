// Package leased carries a workflow run that a job fetch leased together
// with the job, from the queue that fetched it to the workflow worker that
// executes it, without a field on the public job type.
package leased

import (
	"context"

	"github.com/acidic-go/acidic"
)

type key struct{}

// WithRun returns ctx carrying run, the run the fetch of the job being
// worked leased to its attempt (run.LockedBy is the lease token). A nil run
// returns ctx as it is.
func WithRun(ctx context.Context, run *acidic.Run) context.Context {
	if run == nil {
		return ctx
	}
	return context.WithValue(ctx, key{}, run)
}

// Run returns the run WithRun put in ctx, or nil.
func Run(ctx context.Context) *acidic.Run {
	r, _ := ctx.Value(key{}).(*acidic.Run)
	return r
}
