package steps

import (
	"context"
	"fmt"
)

// ForEachOptions tune a for-each step.
type ForEachOptions struct {
	// BatchSize is how many items share one transaction. Default 1: each
	// item commits on its own, with the cursor.
	BatchSize int
}

// ForEach returns a step that calls fn for every item of the collection
// items returns (from the arguments or the persisted state). The cursor
// commits in the same transaction as each item's work (or each batch's), so
// a failed or crashed run resumes at the first item that did not commit and
// never repeats one that did. items must return the same collection, in the
// same order, every time it is called for a run.
//
// Inside fn, sc.IdempotencyKey names the item, and sc.Cursor is its index.
// An item that returns Snooze or Repeat commits the items before it (and its
// own writes, as any step that snoozes does) and is itself processed again
// when the step runs again; an error rolls the whole batch back. Returning
// Halt from an item is an error (ErrInvalid).
func ForEach[A, S, T any](name string, items func(sc *Context[A, S]) ([]T, error), fn func(ctx context.Context, sc *Context[A, S], item T) error, opts ForEachOptions) Step[A, S] {
	batch := int64(max(opts.BatchSize, 1))
	return Step[A, S]{name: name, fn: func(ctx context.Context, sc *Context[A, S]) error {
		list, err := items(sc)
		if err != nil {
			return fmt.Errorf("steps: %s: items: %w", name, err)
		}
		start := sc.env.Cursor
		end := min(start+batch, int64(len(list)))
		sc.env.Iterating = true
		defer func() { sc.env.Cursor = start }()
		for i := start; i < end; i++ {
			sc.env.Cursor = i
			err := fn(ctx, sc, list[i])
			if err == nil {
				continue
			}
			if c, ok := AsControl(err); ok {
				switch c.Kind() {
				case KindSnooze, KindRepeat:
					// The items before this one are done; this one runs
					// again when the step does.
					sc.next = i
				case KindHalt:
					return fmt.Errorf("%w: steps: %s: item %d returned Halt; an item may return Snooze, Repeat, Cancel or an error", ErrInvalid, name, i)
				}
			}
			return err
		}
		sc.next = end
		if end < int64(len(list)) {
			return Repeat()
		}
		return nil
	}}
}
