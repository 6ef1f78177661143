package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
)

// Publisher hands messages to the system outside the database.
//
// Delivery is at least once: the same message (same ID) may be published
// more than once, for example after a relay died between a successful
// publish and recording it, or after a publish outlived its lease. Publish
// must therefore be idempotent on msg.ID (pass it as the broker's message id
// or deduplication key, say), or the receiver must tolerate duplicates.
//
// Publish returns nil only once the message is safely handed over; any error
// makes the relay try again later, after the Config.Backoff delay. It must
// respect ctx, which ends after Config.PublishTimeout. It is called from
// several goroutines at once (for messages of different keys).
type Publisher interface {
	// Publish hands msg over, returning nil once it is safely delivered.
	Publish(ctx context.Context, msg *acidic.OutboxMessage) error
}

// PublisherFunc adapts a function to a Publisher. The same rules apply:
// idempotent on msg.ID, or tolerant of duplicates.
type PublisherFunc func(ctx context.Context, msg *acidic.OutboxMessage) error

// Publish calls f(ctx, msg).
func (f PublisherFunc) Publish(ctx context.Context, msg *acidic.OutboxMessage) error {
	return f(ctx, msg)
}

// Errors returned by this package.
var (
	// ErrInvalid is returned, wrapped with the reason, by New for a bad
	// Config or a nil driver.
	ErrInvalid = errors.New("outbox: invalid relay config")

	// ErrAlreadyStarted is returned by Start on a relay that is running, or
	// whose Stop has not finished.
	ErrAlreadyStarted = errors.New("outbox: relay already started")

	// ErrNotStarted is returned by Stop on a relay that was never started.
	// (Stop on a relay that has stopped returns nil.)
	ErrNotStarted = errors.New("outbox: relay not started")
)

// Config configures a Relay. Only Publisher is required; zero values take
// the defaults documented on each field.
type Config struct {
	// Publisher delivers the messages. Required.
	Publisher Publisher

	// BatchSize is how many messages one claim takes at most (one per key).
	// Default 100.
	BatchSize int

	// Concurrency is how many messages of a batch (all of different keys)
	// are published at once. 1 publishes a batch sequentially. Default 8.
	Concurrency int

	// Lease is how long a claimed message stays hidden from other relays
	// while this relay delivers it. When it passes without the delivery
	// being recorded (the relay died, or the publish hangs), any relay may
	// claim the message again. It must exceed PublishTimeout. A message of a
	// batch is handed to the Publisher only while at least
	// min(PublishTimeout, Lease/2) of its lease remains (a publish started
	// with less than PublishTimeout left has its deadline cut to the lease's
	// end), so a lease shorter than a batch's total publishing time defers
	// the rest of the batch to a later claim, without spending an attempt.
	// Default 1m.
	Lease time.Duration

	// PublishTimeout bounds one call to Publish (its context's deadline).
	// Default 30s.
	PublishTimeout time.Duration

	// Backoff is how long a message waits after its attempt number attempt
	// (Message.Attempts, from 1) failed with err. The messages behind it in
	// its key wait as long. Default queue.DefaultBackoff (1s, doubling, up
	// to 1h).
	Backoff queue.BackoffFunc

	// PollInterval is how often an idle relay looks for due messages without
	// a notification: messages whose retry time came, and messages whose
	// notification was missed while the listener reconnected. Default 1s.
	PollInterval time.Duration

	// Retention is how long delivered messages are kept before they are
	// pruned. Undelivered messages are never pruned. Default 24h.
	Retention time.Duration

	// PruneInterval is how often a started relay prunes delivered messages
	// older than Retention. Default 1m.
	PruneInterval time.Duration

	// Logger receives the relay's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Publisher == nil {
		return c, fmt.Errorf("%w: Publisher is required", ErrInvalid)
	}
	if c.BatchSize < 0 {
		return c, fmt.Errorf("%w: negative BatchSize %d", ErrInvalid, c.BatchSize)
	}
	if c.Concurrency < 0 {
		return c, fmt.Errorf("%w: negative Concurrency %d", ErrInvalid, c.Concurrency)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Lease", c.Lease}, {"PublishTimeout", c.PublishTimeout}, {"PollInterval", c.PollInterval},
		{"Retention", c.Retention}, {"PruneInterval", c.PruneInterval},
	} {
		if d.v < 0 {
			return c, fmt.Errorf("%w: negative %s %s", ErrInvalid, d.name, d.v)
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Lease, time.Minute)
	def(&c.PublishTimeout, 30*time.Second)
	def(&c.PollInterval, time.Second)
	def(&c.Retention, 24*time.Hour)
	def(&c.PruneInterval, time.Minute)
	if c.Backoff == nil {
		c.Backoff = queue.DefaultBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Lease <= c.PublishTimeout {
		return c, fmt.Errorf("%w: Lease (%s) must exceed PublishTimeout (%s)", ErrInvalid, c.Lease, c.PublishTimeout)
	}
	// The lease is stored in microseconds.
	if c.Lease < time.Millisecond {
		return c, fmt.Errorf("%w: Lease %s is shorter than 1ms", ErrInvalid, c.Lease)
	}
	return c, nil
}
