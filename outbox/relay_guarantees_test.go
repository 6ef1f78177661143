package outbox_test

// Tests of relay behaviours that other tests exercise only incidentally:
// each one fails when the behaviour it names is removed from relay.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// guaranteeWait polls cond every 5ms until it holds or timeout passes, and
// tells whether it held.
func guaranteeWait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A started relay woken once keeps claiming while its batches deliver
// something: delivering a key's head makes the next message of the key due,
// so one notification drains a whole key without waiting for the poll.
func TestGuaranteeDrainContinuesAfterDelivery(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var (
			mu   sync.Mutex
			seqs []int
		)
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(_ context.Context, m *acidic.OutboxMessage) error {
				var pl payload
				if err := json.Unmarshal(m.Payload, &pl); err != nil {
					return err
				}
				mu.Lock()
				seqs = append(seqs, pl.Seq)
				mu.Unlock()
				return nil
			}),
			PollInterval: time.Hour,
		})
		startRelay(t, r)
		// Let the start's own wake-ups (the first poll, the listener's connect)
		// pass, so that staging is followed by the notification's wake only.
		time.Sleep(100 * time.Millisecond)

		// One statement, one notification; a batch claims one message per key.
		stage(t, drv, []string{"a"}, 0, 3)
		waitDelivered(t, drv, 2*time.Second)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seqs, []int{0, 1, 2}) {
			t.Fatalf("published %v, want [0 1 2]", seqs)
		}
	})
}

// A message whose turn in a batch comes with too little of the lease left is
// not published: it is deferred and released at once for the next claim,
// keeping its last error, and the release does not touch its attempts.
func TestGuaranteeDefersWhenLeaseRunsShort(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a", "b", "c"}, 0, 1) // one batch of three (one per key)

		const (
			modeFail = iota
			modeSlow
			modeFast
		)
		var (
			mode     atomic.Int64
			mu       sync.Mutex
			calls    []string // key/mode of each Publish call
			firstErr = errors.New("first try fails")
		)
		pub := outbox.PublisherFunc(func(ctx context.Context, m *acidic.OutboxMessage) error {
			md := mode.Load()
			mu.Lock()
			calls = append(calls, fmt.Sprintf("%s/%d", m.Key, md))
			mu.Unlock()
			switch md {
			case modeFail:
				return firstErr
			case modeSlow:
				// Takes more than half of the 1s lease, so that less than
				// Lease/2 (500ms) remains for the next message.
				select {
				case <-time.After(600 * time.Millisecond):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		r := newRelay(t, drv, outbox.Config{
			Publisher:      pub,
			Concurrency:    1,
			Lease:          time.Second,
			PublishTimeout: 800 * time.Millisecond, // min(PublishTimeout, Lease/2) = 500ms must remain
			Backoff:        func(int, error) time.Duration { return 0 },
			Logger:         quiet,
		})

		// Pass 1: every message fails once, so each has a last error to keep.
		res, err := r.RunOnce(ctxT(t))
		if err != nil || res.Claimed != 3 || res.Failed != 3 {
			t.Fatalf("first pass: %+v, %v; want 3 claimed, 3 failed", res, err)
		}

		// Pass 2: a's slow publish uses up the lease; b and c are deferred.
		mode.Store(modeSlow)
		res, err = r.RunOnce(ctxT(t))
		if err != nil {
			t.Fatalf("second pass: %v", err)
		}
		if res.Claimed != 3 || res.Delivered != 1 || res.Deferred != 2 || res.Failed != 0 {
			t.Fatalf("second pass: %+v; want 3 claimed, 1 delivered, 2 deferred, 0 failed", res)
		}
		// b and c were never handed to the Publisher in this pass: the release
		// gives back the attempt the claim counted.
		claimedAttempts := 1
		all := listAll(t, drv)
		if len(all) != 3 || all[0].Key != "a" || all[0].DeliveredAt == nil {
			t.Fatalf("after the second pass: %+v", all)
		}
		for _, m := range all[1:] {
			if m.DeliveredAt != nil || m.LastError != firstErr.Error() || m.Attempts != claimedAttempts {
				t.Errorf("deferred message %+v; want undelivered, last error %q kept, attempts %d (the deferral not counted)",
					*m, firstErr, claimedAttempts)
			}
		}

		// Released, not left to their lease: the next claim (~400ms before the
		// lease of pass 2 ends) takes b and c at once.
		mode.Store(modeFast)
		res, err = r.RunOnce(ctxT(t))
		if err != nil || res.Claimed != 2 || res.Delivered != 2 {
			t.Fatalf("third pass: %+v, %v; want the 2 deferred messages claimed and delivered at once", res, err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"a/0", "b/0", "c/0", "a/1", "b/2", "c/2"}
		if !slices.Equal(calls, want) {
			t.Fatalf("publish calls %v, want %v (deferred messages are not handed to the Publisher)", calls, want)
		}
	})
}

// A publish that times out on the deadline the lease set (PublishTimeout is
// cut to the lease's end) is a failure like any other: it is recorded, with
// its error and the Backoff, because the claim that made it is still the
// current one (the record matches the claim's attempt number).
func TestGuaranteeFailureAtLeaseEndIsRecorded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a", "b"}, 0, 1) // one batch of two, a first
		pub := outbox.PublisherFunc(func(ctx context.Context, m *acidic.OutboxMessage) error {
			if m.Key == "a" {
				time.Sleep(300 * time.Millisecond) // leaves 700ms of the lease
				return nil
			}
			<-ctx.Done() // b waits out its deadline: the lease's end
			return ctx.Err()
		})
		r := newRelay(t, drv, outbox.Config{
			Publisher:      pub,
			Concurrency:    1,
			Lease:          time.Second,
			PublishTimeout: 800 * time.Millisecond, // more than the 700ms left: cut to the lease end
			Backoff:        func(int, error) time.Duration { return time.Hour },
			Logger:         quiet,
		})
		res, err := r.RunOnce(ctxT(t))
		if err != nil || res.Delivered != 1 || res.Failed != 1 {
			t.Fatalf("RunOnce: %+v, %v; want a delivered, b failed", res, err)
		}
		all := listAll(t, drv)
		if len(all) != 2 {
			t.Fatalf("messages: %+v", all)
		}
		b := all[1]
		if b.Key != "b" || b.DeliveredAt != nil || b.LastError != context.DeadlineExceeded.Error() ||
			!b.NextAttemptAt.After(time.Now().Add(50*time.Minute)) {
			t.Errorf("b = %+v; want undelivered, last error %q, due again in about an hour (the Backoff)", *b, context.DeadlineExceeded)
		}
	})
}

// A hard stop (Stop's context ends) cancels the publish in flight and
// releases the batch's messages that were not started yet: they are due
// again at once instead of waiting for their lease, and were never published.
func TestGuaranteeHardStopReleasesUnstarted(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a", "b"}, 0, 1) // one batch of two (one per key)

		started := make(chan struct{})
		var calls atomic.Int64
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(ctx context.Context, _ *acidic.OutboxMessage) error {
				if calls.Add(1) == 1 {
					close(started)
				}
				<-ctx.Done()
				return ctx.Err()
			}),
			Concurrency:  1,           // b waits behind a
			Lease:        time.Minute, // a leased message would stay hidden a minute
			Backoff:      func(int, error) time.Duration { return time.Hour },
			PollInterval: time.Hour,
			Logger:       quiet,
		})
		startRelay(t, r)
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("publish never started")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop: %v, want DeadlineExceeded", err)
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d publish calls, want 1 (b must not be published after the stop)", n)
		}

		all := listAll(t, drv)
		if len(all) != 2 || all[0].Key != "a" || all[1].Key != "b" {
			t.Fatalf("messages %+v", all)
		}
		a, b := all[0], all[1]
		if a.DeliveredAt != nil || a.LastError != context.Canceled.Error() || !a.NextAttemptAt.After(time.Now().Add(50*time.Minute)) {
			t.Errorf("cancelled message %+v; want a failure due after the hour of backoff", *a)
		}
		if b.DeliveredAt != nil || b.LastError != "" || b.Attempts != 0 || b.NextAttemptAt.After(time.Now().Add(time.Second)) {
			t.Errorf("unstarted message %+v; want it released: undelivered, no error, no attempt, due now (not after the 1m lease)", *b)
		}
		// Due again now: a fresh claim takes it (and not a, which backs off).
		claimed, err := drv.OutboxClaim(ctxT(t), storage.OutboxClaimParams{Limit: 10, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 || claimed[0].ID != b.ID {
			t.Fatalf("claim after the stop returned %+v; want only b (id %d)", claimed, b.ID)
		}
	})
}

// RunOnce publishes at most Config.Concurrency messages at once, however
// large the batch.
func TestGuaranteeConcurrencyCap(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		const keys, concurrency = 9, 3
		stage(t, drv, keyNames(keys), 0, 1)

		var inFlight, maxInFlight atomic.Int64
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					cur := maxInFlight.Load()
					if n <= cur || maxInFlight.CompareAndSwap(cur, n) {
						break
					}
				}
				time.Sleep(30 * time.Millisecond)
				return nil
			}),
			Concurrency: concurrency,
		})
		res, err := r.RunOnce(ctxT(t))
		if err != nil || res.Claimed != keys || res.Delivered != keys {
			t.Fatalf("RunOnce: %+v, %v; want %d claimed and delivered", res, err, keys)
		}
		if got := maxInFlight.Load(); got > concurrency {
			t.Fatalf("%d publishes in flight at once, want at most Concurrency (%d)", got, concurrency)
		} else if got < concurrency {
			t.Errorf("at most %d publishes in flight at once; want Concurrency (%d) with %d messages of 30ms", got, concurrency, keys)
		}
	})
}

// A started relay prunes delivered messages past Retention every
// PruneInterval by itself, and keeps undelivered ones.
func TestGuaranteeStartedRelayPrunes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"ok", "stuck"}, 0, 2)
		r := newRelay(t, drv, outbox.Config{
			Publisher:     failingKey("stuck"),
			Backoff:       func(int, error) time.Duration { return time.Hour },
			PollInterval:  10 * time.Millisecond,
			Retention:     time.Microsecond,
			PruneInterval: 20 * time.Millisecond,
		})
		startRelay(t, r)
		var left []string
		pruned := guaranteeWait(3*time.Second, func() bool {
			left = left[:0]
			onlyStuck := true
			for _, m := range listAll(t, drv) {
				left = append(left, fmt.Sprintf("%s/%d delivered=%t", m.Key, m.ID, m.DeliveredAt != nil))
				onlyStuck = onlyStuck && m.Key == "stuck" && m.DeliveredAt == nil
			}
			return len(left) == 2 && onlyStuck
		})
		if !pruned {
			t.Fatalf("after 3s the outbox holds %v; want the delivered messages pruned and only the 2 stuck ones left", left)
		}
	})
}

// Backoff gets the number of the attempt that failed: 1, 2, 3 for a message
// failing three times, with the publish error.
func TestGuaranteeBackoffAttemptNumbers(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a"}, 0, 1)
		var (
			mu       sync.Mutex
			calls    int
			attempts []int
			errs     []string
		)
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls <= 3 {
					return fmt.Errorf("failure %d", calls)
				}
				return nil
			}),
			Backoff: func(attempt int, err error) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				attempts = append(attempts, attempt)
				errs = append(errs, err.Error())
				return 0
			},
		})
		if total := runUntilIdle(t, r); total.Delivered != 1 || total.Failed != 3 {
			t.Fatalf("RunOnce: %+v; want 3 failures, then delivered", total)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(attempts, []int{1, 2, 3}) {
			t.Errorf("Backoff got attempts %v, want [1 2 3]", attempts)
		}
		if !slices.Equal(errs, []string{"failure 1", "failure 2", "failure 3"}) {
			t.Errorf("Backoff got errors %q", errs)
		}
		if m := listAll(t, drv)[0]; m.Attempts != 4 || m.DeliveredAt == nil {
			t.Errorf("message %+v; want delivered on attempt 4", *m)
		}
	})
}

// After its listener reconnects, a started relay looks for work at once:
// notifications sent while it was down are lost, and the poll may be far off.
func TestGuaranteeWakesAfterListenerReconnects(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it kills the listener's backend (pg_terminate_backend); SQLite's listeners are in-process and have no connection to lose.
	base := testdb.New(t, testdb.Options{})
	admin := base.Pool()

	// The relay's own pool, named, so that its listener's connection can be
	// found and killed without touching other tests' connections.
	app := fmt.Sprintf("outbox-guarantee-%d", time.Now().UnixNano())
	cfg, err := pgxpool.ParseConfig(testdb.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	drv := postgres.New(pool, postgres.Options{Schema: base.Schema()})

	const listeners = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'listen %'"
	listening := func() bool {
		var n int
		if err := admin.QueryRow(ctxT(t), listeners, app).Scan(&n); err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		return n == 1
	}
	pending := func() int {
		msgs, err := drv.OutboxList(ctxT(t), storage.OutboxListParams{PendingOnly: true, Limit: 10})
		if err != nil {
			t.Fatalf("OutboxList: %v", err)
		}
		return len(msgs)
	}

	var calls atomic.Int64
	r := newRelay(t, drv, outbox.Config{
		Publisher:    outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error { calls.Add(1); return nil }),
		PollInterval: time.Hour,
		Logger:       quiet, // the lost listener is logged
	})
	startRelay(t, r)
	if !guaranteeWait(5*time.Second, listening) {
		t.Fatal("the relay's listener never connected")
	}
	// Let the start's wake-ups (first poll, listener connect) pass.
	time.Sleep(300 * time.Millisecond)

	// A message staged without a notification: nothing wakes the relay.
	if _, err := admin.Exec(ctxT(t), "INSERT INTO "+pgx.Identifier{base.Schema(), "outbox"}.Sanitize()+
		" (topic, key, payload) VALUES ('test', 'a', '{}')"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := pending(); n != 1 || calls.Load() != 0 {
		t.Fatalf("%d pending, %d publishes before the reconnect; want the message untouched (nothing should wake the relay)", n, calls.Load())
	}

	// Kill the listener's connection; it reconnects within ~50ms and the
	// relay then finds the message.
	var killed int
	if err := admin.QueryRow(ctxT(t), "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"+
		" WHERE application_name = $1 AND query ILIKE 'listen %') k", app).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the listener: %d terminated, %v", killed, err)
	}
	if !guaranteeWait(3*time.Second, func() bool { return pending() == 0 }) {
		t.Fatalf("message not delivered within 3s of the listener's reconnect (listening again: %t)", listening())
	}
}

// OutboxRelease gives back only current claims: a claim whose attempt
// number moved on (another relay claimed the message since) is left alone,
// whatever else the same statement gives back.
func TestGuaranteeReleaseGivesBackOnlyCurrentClaims(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a", "b"}, 0, 1)
		claimed, err := drv.OutboxClaim(ctxT(t), storage.OutboxClaimParams{Limit: 10, Lease: time.Hour})
		if err != nil || len(claimed) != 2 {
			t.Fatalf("claim: %v, %d messages", err, len(claimed))
		}
		current := storage.OutboxClaim{ID: claimed[0].ID, Attempt: claimed[0].Attempts}
		stale := storage.OutboxClaim{ID: claimed[1].ID, Attempt: claimed[1].Attempts - 1}
		if err := drv.OutboxRelease(ctxT(t), storage.OutboxReleaseParams{Claims: []storage.OutboxClaim{current, stale}}); err != nil {
			t.Fatalf("OutboxRelease: %v", err)
		}
		all := listAll(t, drv)
		if a := all[0]; a.Attempts != 0 || a.NextAttemptAt.After(time.Now().Add(time.Second)) {
			t.Errorf("released claim: attempts %d, due %v; want 0 attempts, due now", a.Attempts, a.NextAttemptAt)
		}
		if b := all[1]; b.Attempts != 1 || !b.NextAttemptAt.After(time.Now().Add(50*time.Minute)) {
			t.Errorf("stale claim's message: attempts %d, due %v; want unchanged (1 attempt, leased an hour)", b.Attempts, b.NextAttemptAt)
		}
	})
}
