// Package service gives each long-running part of Acidic (the queue client,
// the outbox relay) the same lifecycle, so none of them hand-rolls cancel
// functions and wait groups: Start runs the part's goroutines once, Stop
// ends them (twice is fine), Wait waits for them with a deadline, and
// Stopped is a signal tests wait on instead of sleeping.
//
// A part holds a Base and gives Start its run function. run receives two
// contexts: ctx, which Stop ends (take no new work, wind down), and work,
// which Stop ends only when its own context ends first (abandon the work in
// flight). run returns once everything it started has returned.
//
//	          Start                 Stop
//	(none) ─────────► running ──────────────► stopping ── run returns ──► stopped
//	                     ▲     ctx ends          │ Stop's ctx ends:            │
//	                     │                       │ work ends too               │
//	                     └───────────────────── Start ◄────────────────────────┘
package service

import (
	"context"
	"errors"
	"sync"
)

var (
	// ErrStarted is returned by Start while the part's run function has not
	// returned: it is running, or still stopping.
	ErrStarted = errors.New("service: already started")

	// ErrNotStarted is returned by Stop on a part that was never started.
	ErrNotStarted = errors.New("service: not started")
)

// Base is the lifecycle of one long-running part. Its zero value is ready
// to use; it must not be copied after first use. Its methods are safe for
// concurrent use.
type Base struct {
	mu  sync.Mutex
	cur *runState // the latest Start's run; nil before the first Start
}

// runState is one run, from Start until run returns. Stop captures it, so a
// Start after the run returned cannot change what an earlier Stop reports.
type runState struct {
	stop     context.CancelFunc      // ends run's ctx
	halt     context.CancelCauseFunc // ends run's work context
	done     chan struct{}           // closed once run returned
	err      error                   // run's error, set before done closes
	stopping bool                    // a Stop has begun (guarded by Base.mu)
}

// Start calls run in a new goroutine and returns at once; ctx only bounds
// the start itself (an ended ctx starts nothing and returns its error). The
// contexts run receives keep ctx's values but not its cancellation: ctx is
// ended by Stop, work by a Stop whose own context ends first (with that
// context's cause). Both end once run returns.
//
// Start returns ErrStarted while an earlier run has not returned, so a
// part's goroutines never run twice at once. After run returned (the part
// stopped), Start starts it again.
func (b *Base) Start(ctx context.Context, run func(ctx, work context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && !closed(b.cur.done) {
		return ErrStarted
	}
	base := context.WithoutCancel(ctx)
	runCtx, stop := context.WithCancel(base)
	work, halt := context.WithCancelCause(base)
	r := &runState{stop: stop, halt: halt, done: make(chan struct{})}
	b.cur = r
	go func() {
		defer close(r.done)
		defer halt(nil)
		defer stop()
		r.err = run(runCtx, work)
	}()
	return nil
}

// Stop stops the part and waits for its run function to return. The first
// Stop since Start ends run's ctx; if Stop's ctx ends before run returns, it
// ends run's work context too, with ctx's cause, and waits on: run must
// return soon after its work context ends. It returns run's error if there
// is one, else ctx's cause (context.Cause) if ctx ended first, else nil.
//
// Any other Stop (a concurrent one, or one after the part stopped) waits for
// run to return and returns nil; if its own ctx ends first it returns that
// ctx's cause, leaving the first Stop to finish the shutdown. Stop on a part
// never started returns ErrNotStarted.
func (b *Base) Stop(ctx context.Context) error {
	b.mu.Lock()
	r := b.cur
	if r == nil {
		b.mu.Unlock()
		return ErrNotStarted
	}
	first := !r.stopping
	r.stopping = true
	b.mu.Unlock()

	if !first {
		if !waitDone(ctx, r.done) {
			return context.Cause(ctx)
		}
		return nil
	}
	r.stop()
	if waitDone(ctx, r.done) {
		return r.err
	}
	r.halt(context.Cause(ctx))
	<-r.done
	if r.err != nil {
		return r.err
	}
	return context.Cause(ctx)
}

// Wait waits until the part's run function has returned or ctx ends, and
// reports whether run returned. It does not stop anything. It returns true
// at once on a part never started.
func (b *Base) Wait(ctx context.Context) bool {
	return waitDone(ctx, b.Stopped())
}

// Stopped returns a channel closed once the run function of the latest
// Start has returned; take it after Start. Before any Start it returns a
// closed channel.
func (b *Base) Stopped() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return b.cur.done
}

// waitDone waits for done or ctx and reports whether done closed; when
// both are ready, done wins.
func waitDone(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return closed(done)
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
