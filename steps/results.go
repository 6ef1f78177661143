package steps

import (
	"context"
	"fmt"

	"github.com/acidic-go/acidic"
)

// ChildResults returns the results of the runs awaited by step awaitStep of
// this run, decoded into R, in the order of Children: oldest first, and in
// no particular order among children staged by one execution of the step
// (they are created together), so let each result say which request it
// answers. The step after an await step reads what its children returned
// this way:
//
//	quotes, err := steps.ChildResults[Quote](ctx, sc, "quote")
//
// Every child must have succeeded with a result: a child that has not (it
// failed or was cancelled, under AwaitOptions.ContinueOnFailure) or that set
// none is acidic.ErrNoResult naming it; read such children with Children
// and acidic.DecodeResult. A result that does not decode into R is an
// *acidic.DecodeError (errors.Is(err, acidic.ErrDecode)).
func ChildResults[R, A, S any](ctx context.Context, sc *Context[A, S], awaitStep string) ([]R, error) {
	children, err := sc.Children(ctx, awaitStep)
	if err != nil {
		return nil, err
	}
	out := make([]R, len(children))
	for i, c := range children {
		if c.State != acidic.RunSucceeded {
			return nil, fmt.Errorf("steps: child run %s (%s) of step %q is %s: %w", c.ID, c.Workflow, awaitStep, c.State, acidic.ErrNoResult)
		}
		if out[i], err = acidic.DecodeResult[R](c); err != nil {
			return nil, fmt.Errorf("steps: child run %s (%s) of step %q: %w", c.ID, c.Workflow, awaitStep, err)
		}
	}
	return out, nil
}
