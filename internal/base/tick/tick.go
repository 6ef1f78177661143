// Package tick runs background work at a fixed interval until its context
// ends: the heartbeat and maintenance loops of the queue and the outbox
// relay's pruning.
package tick

import (
	"context"
	"time"
)

// Every calls fn every d (the first call one interval after the start) until
// ctx ends. A call that outlasts d delays the next one; ticks are not queued
// up.
func Every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}
