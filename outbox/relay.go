package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/notifier"
	"github.com/acidic-go/acidic/internal/base/service"
	"github.com/acidic-go/acidic/internal/base/tick"
	"github.com/acidic-go/acidic/storage"
)

// recordTimeout bounds the database write that records a publish's outcome.
// It is not tied to the caller's context: a publish that happened must be
// recorded even while the relay stops, or it is published again.
const recordTimeout = 10 * time.Second

// pruneLimit is how many delivered messages one prune statement deletes.
const pruneLimit = 1000

// Relay delivers staged messages to a Publisher. Start runs it in the
// background; RunOnce delivers one batch now. Any number of relays, in one
// process or many, may run on one schema. A Relay is safe for concurrent use.
type Relay struct {
	drv  storage.Driver
	cfg  Config
	wake chan struct{}
	svc  service.Base // runs the delivery, listener and prune loops (see run)
}

// New returns a relay on drv. It returns ErrInvalid, wrapped with the reason,
// for a nil driver or a bad Config.
func New(drv storage.Driver, cfg Config) (*Relay, error) {
	if drv == nil {
		return nil, fmt.Errorf("%w: nil driver", ErrInvalid)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{drv: drv, cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Config returns the relay's configuration with defaults applied.
func (r *Relay) Config() Config { return r.cfg }

// Result tells what one RunOnce did.
type Result struct {
	// Claimed is how many messages the claim returned (at most one per key).
	Claimed int
	// Delivered is how many were published and recorded as delivered.
	Delivered int
	// Failed is how many publishes failed. Each is retried after
	// Config.Backoff; the messages behind it in its key wait.
	Failed int
	// Deferred is how many claimed messages were not handed to the Publisher
	// because too little of their lease was left when their turn came (the
	// batch took longer than the lease allows) or the context ended. They
	// are released for the next claim when the lease still holds, and are
	// claimed again once it passes otherwise.
	Deferred int

	nextRetry time.Time // earliest time a failed or deferred message is due again
}

// outcome is what happened to one claimed message.
type outcome int

const (
	delivered outcome = iota
	failed
	deferred // left to its lease
	released // deferred, its claim to be given back
)

// RunOnce claims one batch (up to Config.BatchSize messages, the oldest
// undelivered message of each key that is due), publishes the messages
// concurrently (up to Config.Concurrency at once), and records the outcomes:
// the successes are marked delivered together when the batch ends, so the
// next message of each key becomes due; a failure schedules the message
// again after Config.Backoff. (A claim takes one message per key, so the
// batch's deliveries are independent of each other.)
//
// Publish errors are counted in the Result, not returned. The error is that
// of the claim or, joined, of database writes recording outcomes (a message
// whose outcome was not recorded is claimed again when its lease passes).
// Started relays call RunOnce in a loop; tests and tools may call it
// directly, also while relays run elsewhere.
func (r *Relay) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	claimedAt := time.Now()
	msgs, err := r.drv.OutboxClaim(ctx, storage.OutboxClaimParams{Limit: r.cfg.BatchSize, Lease: r.cfg.Lease})
	if err != nil {
		return res, err
	}
	res.Claimed = len(msgs)
	if len(msgs) == 0 {
		return res, nil
	}
	// The local clock read before the claim is a conservative bound of the
	// lease the database set (with its own clock, after this instant).
	leaseEnd := claimedAt.Add(r.cfg.Lease)

	var (
		mu        sync.Mutex
		errs      []error
		next      int
		published []int64
		giveBack  []storage.OutboxClaim
		wg        sync.WaitGroup
	)
	workers := min(r.cfg.Concurrency, len(msgs))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next == len(msgs) {
					mu.Unlock()
					return
				}
				m := msgs[next]
				next++
				mu.Unlock()

				out, retryAt, err := r.deliver(ctx, m, leaseEnd)

				mu.Lock()
				switch out {
				case delivered:
					res.Delivered++
					published = append(published, m.ID)
				case failed:
					res.Failed++
				case deferred:
					res.Deferred++
				case released:
					res.Deferred++
					giveBack = append(giveBack, storage.OutboxClaim{ID: m.ID, Attempt: m.Attempts})
				}
				res.nextRetry = earliest(res.nextRetry, retryAt)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(giveBack) > 0 {
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := r.drv.OutboxRelease(recCtx, storage.OutboxReleaseParams{Claims: giveBack}); err != nil {
			// Not given back: due again when the lease passes.
			res.nextRetry = earliest(res.nextRetry, leaseEnd)
			errs = append(errs, fmt.Errorf("outbox: release %d messages: %w", len(giveBack), err))
		} else {
			res.nextRetry = earliest(res.nextRetry, time.Now())
		}
	}
	if len(published) > 0 {
		// Recording a delivery is right even after the lease passed: the
		// messages were published. The write is a no-op for a message
		// another relay recorded first.
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := r.drv.OutboxDelivered(recCtx, storage.OutboxDeliveredParams{IDs: published}); err != nil {
			r.cfg.Logger.Warn("outbox: recording deliveries failed; the messages will be published again",
				"ids", published, "err", err)
			errs = append(errs, fmt.Errorf("outbox: record delivery of %d messages: %w", len(published), err))
		}
	}
	return res, errors.Join(errs...)
}

// deliver publishes one claimed message and records a failure (RunOnce
// records the deliveries and gives back the released claims, each kind in
// one statement). It returns when the message is due again if it failed or
// was left to its lease, and the error of recording a failure.
func (r *Relay) deliver(ctx context.Context, m *acidic.OutboxMessage, leaseEnd time.Time) (outcome, time.Time, error) {
	log := r.cfg.Logger
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()

	// Start a publish only with enough of the lease left that it is unlikely
	// to outlive it, and only while the caller still wants work done.
	minLeft := min(r.cfg.PublishTimeout, r.cfg.Lease/2)
	if left := time.Until(leaseEnd); left < minLeft || ctx.Err() != nil {
		if left <= 0 {
			// The lease is gone: another relay may hold the message now, so
			// leave it alone.
			return deferred, leaseEnd, nil
		}
		// Given back for the next claim, with the batch's others (RunOnce),
		// keeping its last error; this claim was no attempt.
		return released, time.Time{}, nil
	}

	pubCtx, cancelPub := context.WithTimeout(ctx, min(r.cfg.PublishTimeout, time.Until(leaseEnd)))
	pubErr := r.publish(pubCtx, m)
	cancelPub()

	if pubErr == nil {
		if time.Now().After(leaseEnd) {
			log.Warn("outbox: publish outlived its lease; the message may be published again",
				"id", m.ID, "topic", m.Topic, "key", m.Key, "lease", r.cfg.Lease)
		}
		return delivered, time.Time{}, nil // recorded with the batch's others
	}

	// Recorded even when the lease has passed: the write matches this
	// claim's attempt number, so it changes nothing once another relay has
	// claimed the message.
	retryIn := r.cfg.Backoff(m.Attempts, pubErr)
	retryAt := time.Now().Add(retryIn)
	log.Debug("outbox: publish failed", "id", m.ID, "topic", m.Topic, "key", m.Key,
		"attempt", m.Attempts, "retry_at", retryAt, "err", pubErr)
	if err := r.drv.OutboxFailed(recCtx, storage.OutboxFailedParams{ID: m.ID, Attempt: m.Attempts, RetryIn: retryIn, Error: pubErr.Error()}); err != nil {
		return failed, leaseEnd, fmt.Errorf("outbox: record failure of message %d: %w", m.ID, err)
	}
	return failed, retryAt, nil
}

// publish calls the Publisher, turning a panic into an error.
func (r *Relay) publish(ctx context.Context, m *acidic.OutboxMessage) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("outbox: publisher panicked: %v", p)
		}
	}()
	return r.cfg.Publisher.Publish(ctx, m)
}

// Prune deletes messages delivered longer than Config.Retention ago and
// returns how many it deleted. Undelivered messages are never deleted.
// Started relays prune every Config.PruneInterval.
func (r *Relay) Prune(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.drv.OutboxPrune(ctx, storage.OutboxPruneParams{Retention: r.cfg.Retention, Limit: pruneLimit})
		total += n
		if err != nil || n < pruneLimit {
			return total, err
		}
	}
}

// Start runs the relay in the background until Stop: it delivers messages
// as notifications of new ones arrive and every Config.PollInterval, and
// prunes delivered messages every Config.PruneInterval. It returns at once;
// ctx only bounds the start itself. Start on a running relay (or one whose
// Stop has not finished) returns ErrAlreadyStarted; a stopped relay may be
// started again.
func (r *Relay) Start(ctx context.Context) error {
	err := r.svc.Start(ctx, r.run)
	if errors.Is(err, service.ErrStarted) {
		return ErrAlreadyStarted
	}
	return err
}

// run runs the background loops until ctx ends (Stop). Publishes run under
// work, which Stop ends when its context ends first.
func (r *Relay) run(ctx, work context.Context) error {
	halted := context.AfterFunc(work, func() {
		r.cfg.Logger.Warn("outbox: stop deadline passed; cancelled in-flight publishes", "reason", context.Cause(work))
	})
	defer halted()
	var wg sync.WaitGroup
	wg.Go(func() { r.deliverLoop(ctx, work) })
	if r.drv.Capabilities().Notify != storage.NotifyNone {
		wg.Go(func() { r.listenLoop(ctx) })
	}
	wg.Go(func() { r.pruneLoop(ctx) })
	wg.Wait()
	return nil
}

// Stop shuts the relay down gracefully: it claims no new batch, lets the
// publishes of the batch in flight finish, records their outcomes, and
// returns. If ctx ends first, the in-flight publishes' contexts are
// cancelled; Stop waits for them to return and be recorded and then returns
// ctx's error (its cause, if it was given one).
//
// Stop may be called more than once, also concurrently: only the first call
// shuts down (and reports how); the others wait until the relay has stopped
// and return nil, or return ctx's error if ctx ends first, leaving the
// shutdown to the first. Stop on a relay never started returns
// ErrNotStarted.
func (r *Relay) Stop(ctx context.Context) error {
	err := r.svc.Stop(ctx)
	if errors.Is(err, service.ErrNotStarted) {
		return ErrNotStarted
	}
	return err
}

// signal wakes the delivery loop.
func (r *Relay) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// deliverLoop runs batches when woken or when the poll timer fires. It ends
// when loopCtx ends; workCtx is what publishes run under.
func (r *Relay) deliverLoop(loopCtx, workCtx context.Context) {
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-loopCtx.Done():
			return
		case <-poll.C:
		case <-r.wake:
		}
		wait := r.cfg.PollInterval
		if next := r.drain(loopCtx, workCtx); !next.IsZero() {
			wait = max(min(wait, time.Until(next)), 0)
		}
		poll.Reset(wait)
	}
}

// drain runs batches while they may find more work: while a claim comes
// back full, or a delivery made the next message of a key due. It returns
// the earliest time a message it failed or deferred is due again.
func (r *Relay) drain(loopCtx, workCtx context.Context) time.Time {
	var next time.Time
	for loopCtx.Err() == nil {
		res, err := r.RunOnce(workCtx)
		next = earliest(next, res.nextRetry)
		if err != nil {
			if workCtx.Err() == nil {
				r.cfg.Logger.Warn("outbox: delivery batch failed", "err", err)
			}
			return next
		}
		if res.Delivered == 0 && res.Claimed < r.cfg.BatchSize {
			return next
		}
	}
	return next
}

// pruneLoop prunes delivered messages every PruneInterval.
func (r *Relay) pruneLoop(ctx context.Context) {
	tick.Every(ctx, r.cfg.PruneInterval, func(ctx context.Context) {
		n, err := r.Prune(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("outbox: prune failed", "err", err)
		}
		if n > 0 {
			r.cfg.Logger.Debug("outbox: pruned delivered messages", "count", n)
		}
	})
}

// listenLoop keeps a LISTEN connection open and wakes the delivery loop when
// messages are staged. While it is down, polling still finds messages; after
// it reconnects the delivery loop is woken, as notifications may have been
// missed.
func (r *Relay) listenLoop(ctx context.Context) {
	notifier.Run(ctx, r.drv, notifier.Config{
		Topics:    []string{storage.TopicOutbox},
		OnConnect: r.signal,
		OnNotify:  func(storage.Notification) { r.signal() },
		Logger:    r.cfg.Logger,
		Name:      "outbox",
	})
}

// earliest is the earlier of two times, where zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
