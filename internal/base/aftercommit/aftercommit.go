// Package aftercommit runs functions once a transaction the engine owns has
// committed: the events that describe what the transaction wrote are
// published then, once, and not at all when it rolls back.
//
// The owner of a transaction calls With at the start of every attempt of
// its transaction function (a transaction retried after a serialization
// failure runs that function again, and each run needs a list of its own),
// keeps the list of the latest attempt, and calls Run on it only once the
// transaction committed. Code inside the transaction calls Do.
//
// A queue client also gives each job attempt a list, run once the attempt's
// own event is published: what the attempt's code left for after a
// commit the engine cannot see (a transaction of the caller's), or after
// its end (a workflow run its step ended), is published after that event.
// The innermost list wins: a transaction inside the attempt has its own.
package aftercommit

import (
	"context"
	"sync"
)

type key struct{}

// List holds the functions to run once one attempt of a transaction has
// committed. A nil *List runs nothing.
type List struct {
	mu   sync.Mutex
	fns  []func()
	done bool
}

// With returns ctx carrying a new, empty list, and the list. Call it once
// per attempt of the transaction, inside its transaction function.
func With(ctx context.Context) (context.Context, *List) {
	l := &List{}
	return context.WithValue(ctx, key{}, l), l
}

// Do adds fn to the list ctx carries, to run once that transaction
// committed. When ctx carries none (a transaction its caller owns, whose
// COMMIT the engine cannot see), or the list already ran, fn runs at once.
func Do(ctx context.Context, fn func()) {
	if l, _ := ctx.Value(key{}).(*List); l != nil {
		l.mu.Lock()
		if !l.done {
			l.fns = append(l.fns, fn)
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
	fn()
}

// Run runs the list's functions in the order they were added, once: call it
// after the transaction committed. Later calls run nothing, and a Do after
// Run runs its function at once.
func (l *List) Run() {
	if l == nil {
		return
	}
	l.mu.Lock()
	fns := l.fns
	l.fns, l.done = nil, true
	l.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
