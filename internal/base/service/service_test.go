package service_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acidic-go/acidic/internal/base/service"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// cancelled returns a context already ended with cause.
func cancelled(cause error) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	return ctx
}

// untilStopped is a run function that returns when its ctx ends.
func untilStopped(ctx, _ context.Context) error {
	<-ctx.Done()
	return nil
}

// Start runs the part once: a second Start while it runs is ErrStarted and
// does not call run; once stopped, Start starts it again.
func TestStartOnce(t *testing.T) {
	t.Parallel()
	var b service.Base
	var runs atomic.Int32
	run := func(ctx, work context.Context) error {
		runs.Add(1)
		return untilStopped(ctx, work)
	}
	if err := b.Start(context.Background(), run); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := b.Start(context.Background(), run); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("run called %d times, want 1", n)
	}
	if err := b.Start(context.Background(), run); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("run called %d times after a restart, want 2", n)
	}
}

// Start with an ended context starts nothing; the contexts run receives
// keep the values of Start's context but not its cancellation.
func TestStartContext(t *testing.T) {
	t.Parallel()
	var b service.Base
	if err := b.Start(cancelled(context.Canceled), untilStopped); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with an ended context: %v", err)
	}
	if err := b.Stop(context.Background()); !errors.Is(err, service.ErrNotStarted) {
		t.Fatalf("Stop after a failed Start: %v, want ErrNotStarted", err)
	}

	type key struct{}
	startCtx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	got := make(chan [2]context.Context, 1)
	if err := b.Start(startCtx, func(ctx, work context.Context) error {
		got <- [2]context.Context{ctx, work}
		<-ctx.Done()
		return nil
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctxs := <-got
	cancel()
	for i, ctx := range ctxs {
		if ctx.Err() != nil {
			t.Errorf("context %d ended with Start's context", i)
		}
		if ctx.Value(key{}) != "v" {
			t.Errorf("context %d lost the values of Start's context", i)
		}
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for i, ctx := range ctxs {
		if ctx.Err() == nil {
			t.Errorf("context %d still live after Stop", i)
		}
	}
}

// A graceful Stop ends ctx, leaves work alone, and returns run's error; a
// second Stop returns nil at once.
func TestStopTwice(t *testing.T) {
	t.Parallel()
	var b service.Base
	if err := b.Stop(context.Background()); !errors.Is(err, service.ErrNotStarted) {
		t.Fatalf("Stop before Start: %v, want ErrNotStarted", err)
	}
	if !isClosed(b.Stopped()) || !b.Wait(cancelled(context.Canceled)) {
		t.Fatal("a part never started is not stopped")
	}
	errRun := errors.New("run failed")
	workLive := make(chan bool, 1)
	if err := b.Start(context.Background(), func(ctx, work context.Context) error {
		<-ctx.Done()
		workLive <- work.Err() == nil
		return errRun
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := b.Stopped()
	if isClosed(stopped) {
		t.Fatal("Stopped closed while running")
	}
	if err := b.Stop(context.Background()); !errors.Is(err, errRun) {
		t.Fatalf("Stop: %v, want run's error", err)
	}
	if !<-workLive {
		t.Error("a graceful Stop ended the work context before run returned")
	}
	if !isClosed(stopped) {
		t.Error("Stop returned before run did")
	}
	if err := b.Stop(cancelled(context.Canceled)); err != nil {
		t.Fatalf("second Stop: %v, want nil", err)
	}
}

// Concurrent Stops all wait for run to return; only the first reports
// run's error, the others return nil.
func TestConcurrentStops(t *testing.T) {
	t.Parallel()
	var b service.Base
	errRun := errors.New("run failed")
	stopping := make(chan struct{})
	release := make(chan struct{})
	if err := b.Start(context.Background(), func(ctx, _ context.Context) error {
		<-ctx.Done()
		close(stopping)
		<-release
		return errRun
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := b.Stopped()
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := b.Stop(context.Background())
			if !isClosed(stopped) {
				t.Error("a Stop returned before run did")
			}
			errs <- err
		})
	}
	<-stopping
	close(release)
	wg.Wait()
	close(errs)
	var withErr int
	for err := range errs {
		switch {
		case errors.Is(err, errRun):
			withErr++
		case err != nil:
			t.Errorf("Stop: %v", err)
		}
	}
	if withErr != 1 {
		t.Fatalf("%d Stops returned run's error, want exactly 1 (the first)", withErr)
	}
}

// A run function that ignores its contexts: Wait with a deadline reports it
// still running, Stop's ended context ends the work context with its cause,
// a second Stop gives up with its own context, Start is refused, and
// everything completes once run returns.
func TestRunIgnoresItsContext(t *testing.T) {
	t.Parallel()
	var b service.Base
	release := make(chan struct{})
	works := make(chan context.Context, 1)
	if err := b.Start(context.Background(), func(_, work context.Context) error {
		works <- work
		<-release
		return nil
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	work := <-works
	stopped := b.Stopped()

	errDeadline := errors.New("stop deadline")
	firstStop := make(chan error, 1)
	go func() { firstStop <- b.Stop(cancelled(errDeadline)) }()
	<-work.Done() // the first Stop's context had ended: work is cut
	if cause := context.Cause(work); !errors.Is(cause, errDeadline) {
		t.Fatalf("work ended with %v, want the Stop context's cause", cause)
	}
	if b.Wait(cancelled(context.Canceled)) {
		t.Fatal("Wait reported run finished while it ignores its contexts")
	}
	if isClosed(stopped) {
		t.Fatal("Stopped closed while run still runs")
	}
	errSecond := errors.New("second stop gave up")
	if err := b.Stop(cancelled(errSecond)); !errors.Is(err, errSecond) {
		t.Fatalf("second Stop whose context ended: %v, want its cause", err)
	}
	if err := b.Start(context.Background(), untilStopped); !errors.Is(err, service.ErrStarted) {
		t.Fatalf("Start while run still runs: %v, want ErrStarted", err)
	}

	close(release)
	if err := <-firstStop; !errors.Is(err, errDeadline) {
		t.Fatalf("first Stop: %v, want its context's cause", err)
	}
	if !b.Wait(context.Background()) || !isClosed(stopped) {
		t.Fatal("not stopped after run returned")
	}
	if err := b.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after stopped: %v", err)
	}
}

// Wait with a deadline reports whether run returned, without stopping it.
func TestWaitWithDeadline(t *testing.T) {
	t.Parallel()
	var b service.Base
	finish := make(chan struct{})
	if err := b.Start(context.Background(), func(_, _ context.Context) error {
		<-finish
		return nil
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if b.Wait(cancelled(context.DeadlineExceeded)) {
		t.Fatal("Wait reported a running part finished")
	}
	close(finish)
	if !b.Wait(context.Background()) {
		t.Fatal("Wait without a deadline returned false")
	}
	if !b.Wait(cancelled(context.DeadlineExceeded)) {
		t.Fatal("Wait on a finished part reported it running")
	}
}
