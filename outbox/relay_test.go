package outbox_test

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

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

func shortBackoff(int, error) time.Duration { return time.Millisecond }

// A publisher failing about 30% of calls: every message is delivered, and
// each key's successful deliveries are exactly its staged order. Messages
// staged in a transaction that rolled back are never delivered.
func TestFlakyPublisherDeliversInOrder(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		keys := keyNames(5)
		const perKey = 40

		stage(t, drv, keys, 0, perKey/2)
		rollback := errors.New("rollback")
		err := drv.InTx(ctxT(t), storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			if err := tx.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{{Topic: "rolled-back", Key: "k0", Payload: []byte(`{"key":"k0","seq":-1}`)}}}); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx: %v, want the rollback error", err)
		}
		err = drv.InTx(ctxT(t), storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			stage(t, tx, keys, perKey/2, perKey)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		pub := newRecorder(42, 0.3)
		r := newRelay(t, drv, outbox.Config{Publisher: pub, Backoff: shortBackoff, PollInterval: 5 * time.Millisecond})
		startRelay(t, r)
		waitDelivered(t, drv, 20*time.Second)
		stopRelay(t, r)

		if dups := pub.check(t, keys, perKey); dups != 0 {
			t.Errorf("%d duplicate deliveries with one relay and no lease expiry", dups)
		}
		want := make([]int, perKey)
		for i := range want {
			want[i] = i
		}
		for _, k := range keys {
			if got := pub.order[k]; !slices.Equal(got, want) {
				t.Errorf("key %s: successful deliveries %v, want %v", k, got, want)
			}
		}
		all := listAll(t, drv)
		if len(all) != len(keys)*perKey {
			t.Fatalf("%d messages in the outbox, want %d (the rolled-back one must not exist)", len(all), len(keys)*perKey)
		}
		attempts := 0
		for _, m := range all {
			if m.DeliveredAt == nil || m.Topic != "test" {
				t.Errorf("message %+v", *m)
			}
			attempts += m.Attempts
		}
		if pub.failures == 0 {
			t.Error("the publisher never failed; the test does not exercise retries")
		}
		if attempts != pub.calls {
			t.Errorf("attempts recorded %d, publisher calls %d", attempts, pub.calls)
		}
		t.Logf("%d publish calls, %d failures", pub.calls, pub.failures)
	})
}

// Two started relays on one schema (each on its own driver and pool) share
// the work: every message is delivered, in order per key.
func TestTwoRelays(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		drv2 := testdb.Reopen(t, drv, testdb.Options{})
		keys := keyNames(5)
		const perKey = 40

		pub := newRecorder(7, 0.2)
		pub.delay = 2 * time.Millisecond
		var n1, n2 atomic.Int64
		counting := func(n *atomic.Int64) outbox.Publisher {
			return outbox.PublisherFunc(func(ctx context.Context, m *acidic.OutboxMessage) error {
				n.Add(1)
				return pub.Publish(ctx, m)
			})
		}
		cfg := outbox.Config{Backoff: shortBackoff, PollInterval: 5 * time.Millisecond, BatchSize: 3}
		cfg.Publisher = counting(&n1)
		r1 := newRelay(t, drv, cfg)
		cfg.Publisher = counting(&n2)
		r2 := newRelay(t, drv2, cfg)
		startRelay(t, r1)
		startRelay(t, r2)

		// Staged after the relays started: the notification wakes them.
		stage(t, drv, keys, 0, perKey/2)
		stage(t, drv2, keys, perKey/2, perKey)
		waitDelivered(t, drv, 20*time.Second)
		stopRelay(t, r1)
		stopRelay(t, r2)

		dups := pub.check(t, keys, perKey)
		t.Logf("relay 1: %d calls, relay 2: %d calls, %d failures, %d duplicate deliveries", n1.Load(), n2.Load(), pub.failures, dups)
		if n1.Load() == 0 || n2.Load() == 0 {
			t.Logf("one relay did all the work (allowed, but unexpected)")
		}
	})
}

// A message that keeps failing holds back the rest of its key only: the
// other keys are delivered meanwhile, and its successors go out after it.
func TestFailingHeadBlocksOnlyItsKey(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a", "b"}, 0, 3)
		head := listAll(t, drv)[0] // a/0
		if head.Key != "a" {
			t.Fatalf("first message %+v", *head)
		}

		var (
			mu        sync.Mutex
			published []string
			headCalls int
		)
		const failures = 3
		pub := outbox.PublisherFunc(func(_ context.Context, m *acidic.OutboxMessage) error {
			mu.Lock()
			defer mu.Unlock()
			if m.ID == head.ID {
				headCalls++
				if headCalls <= failures {
					return errors.New("broker says no")
				}
			}
			var pl payload
			if err := json.Unmarshal(m.Payload, &pl); err != nil {
				return err
			}
			published = append(published, fmt.Sprintf("%s%d", m.Key, pl.Seq))
			return nil
		})
		var backoff atomic.Int64
		backoff.Store(int64(time.Hour))
		r := newRelay(t, drv, outbox.Config{Publisher: pub, Backoff: func(int, error) time.Duration {
			return time.Duration(backoff.Load())
		}})

		// a/0 fails and waits an hour; b goes through.
		total := runUntilIdle(t, r)
		if total.Delivered != 3 || total.Failed != 1 {
			t.Fatalf("first pass %+v, want 3 delivered, 1 failed", total)
		}
		mu.Lock()
		if got := published; !slices.Equal(got, []string{"b0", "b1", "b2"}) {
			t.Fatalf("published %v, want b0 b1 b2", got)
		}
		mu.Unlock()
		pending, err := drv.OutboxList(ctxT(t), storage.OutboxListParams{PendingOnly: true, Limit: 0})
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 3 || pending[0].ID != head.ID || pending[0].Attempts != 1 || pending[0].LastError != "broker says no" ||
			!pending[0].NextAttemptAt.After(time.Now().Add(50*time.Minute)) {
			t.Fatalf("pending %+v", pending)
		}
		for _, m := range pending[1:] {
			if m.Attempts != 0 {
				t.Fatalf("message behind the failing head was attempted: %+v", *m)
			}
		}

		// Make it due now; it fails twice more (no wait), then a goes out in order.
		backoff.Store(0)
		if err := drv.OutboxFailed(ctxT(t), storage.OutboxFailedParams{ID: head.ID, Attempt: pending[0].Attempts, RetryIn: 0, Error: pending[0].LastError}); err != nil {
			t.Fatal(err)
		}
		total = runUntilIdle(t, r)
		if total.Delivered != 3 || total.Failed != failures-1 {
			t.Fatalf("second pass %+v, want 3 delivered, %d failed", total, failures-1)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := published; !slices.Equal(got, []string{"b0", "b1", "b2", "a0", "a1", "a2"}) {
			t.Fatalf("published %v", got)
		}
		for _, m := range listAll(t, drv) {
			if m.DeliveredAt == nil || m.LastError != "" {
				t.Errorf("message %+v", *m)
			}
			if m.ID == head.ID && m.Attempts != failures+1 {
				t.Errorf("head attempts %d, want %d", m.Attempts, failures+1)
			}
		}
	})
}

// A claimed message whose delivery is not recorded within the lease is
// claimed and delivered again.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	const lease = 300 * time.Millisecond
	cfg := outbox.Config{Lease: lease, PublishTimeout: 100 * time.Millisecond, Backoff: shortBackoff, Logger: quiet}

	t.Run("relay died after claiming", func(t *testing.T) {
		t.Parallel()
		testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
			stage(t, drv, []string{"a"}, 0, 2)
			claimed, err := drv.OutboxClaim(ctxT(t), storage.OutboxClaimParams{Limit: 10, Lease: lease})
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claim: %v, %d messages", err, len(claimed))
			}
			var calls atomic.Int64
			cfg := cfg
			cfg.Publisher = outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error { calls.Add(1); return nil })
			r := newRelay(t, drv, cfg)
			if res, err := r.RunOnce(ctxT(t)); err != nil || res.Claimed != 0 {
				t.Fatalf("RunOnce under lease: %+v, %v; want nothing claimed", res, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for calls.Load() < 2 {
				if time.Now().After(deadline) {
					t.Fatal("message not redelivered after its lease")
				}
				if _, err := r.RunOnce(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, m := range listAll(t, drv) {
				if m.DeliveredAt == nil {
					t.Errorf("message %+v not delivered", *m)
				}
			}
			if m := listAll(t, drv)[0]; m.Attempts != 2 {
				t.Errorf("attempts %d, want 2 (the dead relay's and the redelivery)", m.Attempts)
			}
		})
	})

	t.Run("publish hangs past the lease", func(t *testing.T) {
		t.Parallel()
		testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
			stage(t, drv, []string{"a"}, 0, 1)
			started := make(chan struct{})
			release := make(chan struct{})
			var calls, successes atomic.Int64
			cfg := cfg
			cfg.Publisher = outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error {
				if calls.Add(1) == 1 {
					close(started)
					<-release // ignores its context: hangs past the lease
					return errors.New("too late")
				}
				successes.Add(1)
				return nil
			})
			hung := newRelay(t, drv, cfg)
			other := newRelay(t, drv, cfg)
			type outcome struct {
				res outbox.Result
				err error
			}
			hungDone := make(chan outcome, 1)
			go func() {
				res, err := hung.RunOnce(context.Background())
				hungDone <- outcome{res, err}
			}()
			<-started
			if res, err := other.RunOnce(ctxT(t)); err != nil || res.Claimed != 0 {
				t.Fatalf("RunOnce under lease: %+v, %v; want nothing claimed", res, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for successes.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("message not redelivered after its lease")
				}
				if _, err := other.RunOnce(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(release)
			out := <-hungDone
			if out.err != nil || out.res.Failed != 1 {
				t.Fatalf("hung relay: %+v, %v", out.res, out.err)
			}
			m := listAll(t, drv)[0]
			// The hung relay's late failure must not undo the redelivery.
			if m.DeliveredAt == nil || m.Attempts != 2 || m.LastError != "" {
				t.Fatalf("message %+v", *m)
			}
		})
	})
}

// Stop lets the publish in flight finish and records it.
func TestStopIsGraceful(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		pub, started, release := heldPublisher()
		r := newRelay(t, drv, outbox.Config{Publisher: pub, PollInterval: 5 * time.Millisecond})
		if err := r.Stop(ctxT(t)); !errors.Is(err, outbox.ErrNotStarted) {
			t.Fatalf("Stop before Start: %v", err)
		}
		startRelay(t, r)
		if err := r.Start(ctxT(t)); !errors.Is(err, outbox.ErrAlreadyStarted) {
			t.Fatalf("second Start: %v", err)
		}
		stage(t, drv, []string{"a"}, 0, 2)
		<-started

		stopped := make(chan error, 1)
		go func() { stopped <- r.Stop(ctxT(t)) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a publish was in flight", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		all := listAll(t, drv)
		if all[0].DeliveredAt == nil {
			t.Fatalf("in-flight message not recorded delivered: %+v", *all[0])
		}
		if all[1].DeliveredAt != nil || all[1].Attempts != 0 {
			t.Fatalf("stopped relay claimed the next message: %+v", *all[1])
		}
		if err := r.Stop(ctxT(t)); err != nil {
			t.Fatalf("second Stop: %v, want nil", err)
		}
	})
}

// Stop may be called twice, also at once: every call returns nil once the
// relay has stopped (the publish in flight finished and was recorded), and
// a later call returns nil at once.
func TestStopTwice(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		pub, started, release := heldPublisher()
		r := newRelay(t, drv, outbox.Config{Publisher: pub, PollInterval: 5 * time.Millisecond})
		startRelay(t, r)
		stage(t, drv, []string{"a"}, 0, 1)
		<-started

		const stops = 2
		type result struct {
			err       error
			delivered bool
		}
		results := make(chan result, stops)
		for range stops {
			go func() {
				err := r.Stop(ctxT(t))
				all, listErr := drv.OutboxList(context.Background(), storage.OutboxListParams{PendingOnly: false, Limit: 10})
				if listErr != nil || len(all) != 1 {
					t.Errorf("OutboxList: %d messages, %v", len(all), listErr)
					results <- result{err, false}
					return
				}
				results <- result{err, all[0].DeliveredAt != nil}
			}()
		}
		close(release)
		for range stops {
			res := <-results
			if res.err != nil {
				t.Errorf("concurrent Stop: %v, want nil", res.err)
			}
			if !res.delivered {
				t.Error("a Stop returned before the publish in flight was recorded")
			}
		}
		if err := r.Stop(ctxT(t)); err != nil {
			t.Fatalf("Stop after stopped: %v, want nil", err)
		}
	})
}

// A Stop whose context ends cancels the publishes in flight, records them as
// failed, and returns the context's error.
func TestStopDeadline(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		started := make(chan struct{})
		var once sync.Once
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(ctx context.Context, _ *acidic.OutboxMessage) error {
				once.Do(func() { close(started) })
				<-ctx.Done()
				return ctx.Err()
			}),
			PollInterval: 5 * time.Millisecond,
			Logger:       quiet,
		})
		startRelay(t, r)
		stage(t, drv, []string{"a"}, 0, 1)
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop: %v, want DeadlineExceeded", err)
		}
		m := listAll(t, drv)[0]
		if m.DeliveredAt != nil || m.LastError != context.Canceled.Error() || m.NextAttemptAt.After(time.Now().Add(10*time.Second)) {
			t.Fatalf("cancelled publish recorded as %+v; want a failure due within the backoff, not the lease", *m)
		}
	})
}

// The notification sent on commit wakes a started relay; it does not wait
// for the poll.
func TestNotificationWakesRelay(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		got := make(chan int64, 10)
		r := newRelay(t, drv, outbox.Config{
			Publisher:    outbox.PublisherFunc(func(_ context.Context, m *acidic.OutboxMessage) error { got <- m.ID; return nil }),
			PollInterval: time.Hour,
		})
		startRelay(t, r)
		for i := range 3 {
			time.Sleep(20 * time.Millisecond)
			stage(t, drv, []string{"a"}, i, i+1)
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Fatalf("message %d not delivered without polling", i)
			}
		}
	})
}

// Prune deletes delivered messages past retention, never pending ones.
func TestPrune(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"ok", "stuck"}, 0, 3)
		r := newRelay(t, drv, outbox.Config{
			Publisher: failingKey("stuck"),
			Backoff:   func(int, error) time.Duration { return time.Hour },
			Retention: time.Microsecond,
		})
		if total := runUntilIdle(t, r); total.Delivered != 3 || total.Failed != 1 {
			t.Fatalf("RunOnce: %+v", total)
		}
		time.Sleep(5 * time.Millisecond)
		n, err := r.Prune(ctxT(t))
		if err != nil || n != 3 {
			t.Fatalf("Prune: %d, %v; want 3", n, err)
		}
		left := listAll(t, drv)
		if len(left) != 3 {
			t.Fatalf("%d messages left, want the 3 undelivered", len(left))
		}
		for _, m := range left {
			if m.Key != "stuck" || m.DeliveredAt != nil {
				t.Errorf("left %+v", *m)
			}
		}

		kept := newRelay(t, drv, outbox.Config{Publisher: outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error { return nil })})
		stage(t, drv, []string{"fresh"}, 0, 1)
		runUntilIdle(t, kept)
		if n, err := kept.Prune(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Prune with 24h retention: %d, %v; want 0", n, err)
		}
	})
}

// A panicking publisher counts as a failed attempt.
func TestPublisherPanic(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		stage(t, drv, []string{"a"}, 0, 1)
		r := newRelay(t, drv, outbox.Config{
			Publisher: outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error { panic("boom") }),
			Backoff:   func(int, error) time.Duration { return time.Hour },
		})
		res, err := r.RunOnce(ctxT(t))
		if err != nil || res.Failed != 1 {
			t.Fatalf("RunOnce: %+v, %v", res, err)
		}
		if m := listAll(t, drv)[0]; m.DeliveredAt != nil || m.LastError != "outbox: publisher panicked: boom" {
			t.Fatalf("message %+v", *m)
		}
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		pub := outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error { return nil })

		r := newRelay(t, drv, outbox.Config{Publisher: pub})
		c := r.Config()
		if c.BatchSize != 100 || c.Concurrency != 8 || c.Lease != time.Minute || c.PublishTimeout != 30*time.Second ||
			c.PollInterval != time.Second || c.Retention != 24*time.Hour || c.PruneInterval != time.Minute ||
			c.Backoff == nil || c.Logger == nil {
			t.Errorf("defaults %+v", c)
		}
		if d := c.Backoff(1, nil); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Errorf("default backoff after the first attempt %s, want queue.DefaultBackoff's ~1s", d)
		}

		bad := map[string]outbox.Config{
			"no publisher":              {},
			"negative batch":            {Publisher: pub, BatchSize: -1},
			"negative concurrency":      {Publisher: pub, Concurrency: -1},
			"negative lease":            {Publisher: pub, Lease: -time.Second},
			"negative poll":             {Publisher: pub, PollInterval: -time.Second},
			"negative retention":        {Publisher: pub, Retention: -time.Second},
			"negative prune interval":   {Publisher: pub, PruneInterval: -time.Second},
			"negative publish timeout":  {Publisher: pub, PublishTimeout: -time.Second},
			"lease under timeout":       {Publisher: pub, Lease: 10 * time.Second},
			"lease equal to timeout":    {Publisher: pub, Lease: time.Second, PublishTimeout: time.Second},
			"lease under a millisecond": {Publisher: pub, Lease: time.Microsecond * 500, PublishTimeout: time.Microsecond},
		}
		for name, cfg := range bad {
			if _, err := outbox.New(drv, cfg); !errors.Is(err, outbox.ErrInvalid) {
				t.Errorf("%s: New returned %v, want ErrInvalid", name, err)
			}
		}
		if _, err := outbox.New(nil, outbox.Config{Publisher: pub}); !errors.Is(err, outbox.ErrInvalid) {
			t.Errorf("nil driver: %v, want ErrInvalid", err)
		}
		if _, err := outbox.New(drv, outbox.Config{Publisher: pub, Lease: 2 * time.Second, PublishTimeout: time.Second,
			Backoff: queue.ExponentialBackoff(time.Millisecond, time.Second), Concurrency: 1}); err != nil {
			t.Errorf("valid config: %v", err)
		}
	})
}
