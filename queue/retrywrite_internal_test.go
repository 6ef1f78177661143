package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
)

// TestRetryWriteStopsAtPermanentErrors: a bookkeeping write is retried while
// the database may come back, but not when the driver is closed or the
// storage refused the write as invalid (it would be refused again until the
// job is rescued).
func TestRetryWriteStopsAtPermanentErrors(t *testing.T) {
	c := &Client{cfg: Config{RescueAfter: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}}
	for _, permanent := range []error{acidic.ErrClosed, acidic.ErrInvalid} {
		calls := 0
		c.retryWrite(func(context.Context) error {
			calls++
			return fmt.Errorf("finish job 7: %w", permanent)
		})
		if calls != 1 {
			t.Errorf("%v: written %d times, want once", permanent, calls)
		}
	}
	calls := 0
	c.retryWrite(func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("connection refused")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("transient failures: written %d times, want 3 (two failures, then success)", calls)
	}
}
