package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/acidic-go/acidic/storage"
)

// Func is the code of a step.
type Func[A, S any] func(ctx context.Context, sc *Context[A, S]) error

// Step is one named step of a workflow with arguments A and state S.
type Step[A, S any] struct {
	name  string
	fn    Func[A, S]
	await *AwaitOptions
}

// Do returns a plain step: fn runs once in the step's transaction.
func Do[A, S any](name string, fn Func[A, S]) Step[A, S] {
	return Step[A, S]{name: name, fn: fn}
}

// Name is the step's name, unique within its workflow. It is stored as the
// run's recovery point, so renaming a step changes the workflow's definition.
func (s Step[A, S]) Name() string { return s.name }

// Awaits reports whether the step is an await step, and its options.
func (s Step[A, S]) Awaits() (AwaitOptions, bool) {
	if s.await == nil {
		return AwaitOptions{}, false
	}
	return *s.await, true
}

// Run executes the step's code once with sc.
func (s Step[A, S]) Run(ctx context.Context, sc *Context[A, S]) error {
	return s.fn(ctx, sc)
}

// ErrInvalid is returned, wrapped, for a step or list of steps that cannot
// make a workflow: an empty name, a name that is not a valid name
// (storage.CheckName), a nil function, a duplicate name, none.
var ErrInvalid = errors.New("steps: invalid step")

// Validate checks a workflow's list of steps.
func Validate[A, S any](list []Step[A, S]) error {
	if len(list) == 0 {
		return fmt.Errorf("%w: a workflow needs at least one step", ErrInvalid)
	}
	seen := map[string]bool{}
	for i, s := range list {
		if s.name == "" {
			return fmt.Errorf("%w: step %d has no name", ErrInvalid, i+1)
		}
		if err := storage.CheckName("step name", s.name); err != nil {
			return fmt.Errorf("%w: step %d: %w", ErrInvalid, i+1, err)
		}
		if s.fn == nil {
			return fmt.Errorf("%w: step %q has no function", ErrInvalid, s.name)
		}
		if seen[s.name] {
			return fmt.Errorf("%w: duplicate step name %q", ErrInvalid, s.name)
		}
		seen[s.name] = true
	}
	if last := list[len(list)-1]; last.await != nil {
		return fmt.Errorf("%w: await step %q is the last step: add a step after it, which runs once the children finish", ErrInvalid, last.name)
	}
	return nil
}
