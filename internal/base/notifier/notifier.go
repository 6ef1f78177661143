// Package notifier keeps a LISTEN connection open for a long-lived service
// (the queue's producers, the outbox relay): it reconnects with backoff when
// the connection is lost, and tells the service when it (re)connects, since
// notifications sent meanwhile are gone and the service should look for work.
package notifier

import (
	"context"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/acidic-go/acidic/storage"
)

// Config says what to listen to and whom to tell.
type Config struct {
	// Topics to listen to.
	Topics []string
	// OnConnect is called each time the listener is (re)connected.
	OnConnect func()
	// OnNotify is called for each notification, in the listener's goroutine.
	OnNotify func(storage.Notification)
	// Logger receives reconnection warnings, prefixed with Name.
	Logger *slog.Logger
	Name   string
}

// Run listens until ctx ends, reconnecting after 50ms, then backing off to
// 5s between attempts.
func Run(ctx context.Context, drv storage.Driver, cfg Config) {
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = 50 * time.Millisecond
	retry.MaxInterval = 5 * time.Second
	retry.MaxElapsedTime = 0
	for ctx.Err() == nil {
		err := listenOnce(ctx, drv, cfg, retry.Reset)
		if ctx.Err() != nil {
			return
		}
		wait := retry.NextBackOff()
		cfg.Logger.Warn(cfg.Name+": listener lost; reconnecting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func listenOnce(ctx context.Context, drv storage.Driver, cfg Config, connected func()) error {
	l, err := drv.NewListener(ctx)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Close(closeCtx)
	}()
	for _, topic := range cfg.Topics {
		if err := l.Listen(ctx, topic); err != nil {
			return err
		}
	}
	connected()
	cfg.OnConnect()
	for {
		n, err := l.Wait(ctx)
		if err != nil {
			return err
		}
		cfg.OnNotify(n)
	}
}
