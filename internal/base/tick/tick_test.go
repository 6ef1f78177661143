package tick

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryCallsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, 5*time.Millisecond, func(context.Context) {
			if calls.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not return after its context was cancelled")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("fn called %d times, want 3 (none after the cancel)", n)
	}
}

func TestEveryWaitsAnIntervalFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	called := false
	Every(ctx, time.Hour, func(context.Context) { called = true })
	if called {
		t.Error("fn called before the first interval passed")
	}
}
