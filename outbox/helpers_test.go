package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/storage"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// quiet is a logger that drops everything, for relays whose warnings are
// expected (lease expiry tests).
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// payload is what the tests stage: a key and the message's position in it.
type payload struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

func msg(key string, seq int) storage.OutboxInsert {
	b, _ := json.Marshal(payload{Key: key, Seq: seq})
	return storage.OutboxInsert{Topic: "test", Key: key, Payload: b}
}

// stage inserts keys × [from, to) messages, seq-major (k0/0, k1/0, ..., k0/1,
// ...), in one statement.
func stage(t *testing.T, ex storage.Executor, keys []string, from, to int) {
	t.Helper()
	var msgs []storage.OutboxInsert
	for seq := from; seq < to; seq++ {
		for _, k := range keys {
			msgs = append(msgs, msg(k, seq))
		}
	}
	if err := ex.OutboxInsert(context.Background(), storage.OutboxInsertParams{Messages: msgs}); err != nil {
		t.Fatalf("OutboxInsert: %v", err)
	}
}

func keyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	return keys
}

// recorder is a Publisher that fails a fraction of calls pseudo-randomly and
// checks, on every success, that all earlier messages of the key have been
// published successfully before.
type recorder struct {
	mu       sync.Mutex
	rng      *rand.Rand
	failRate float64
	delay    time.Duration // up to this long per call, random, outside the lock

	calls      int
	failures   int
	successes  map[int64]int  // by message id
	done       map[string]int // key → seqs 0..done-1 published
	order      map[string][]int
	violations []string
}

func newRecorder(seed uint64, failRate float64) *recorder {
	return &recorder{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		failRate:  failRate,
		successes: map[int64]int{},
		done:      map[string]int{},
		order:     map[string][]int{},
	}
}

var errFlaky = errors.New("flaky publisher")

func (p *recorder) Publish(ctx context.Context, m *acidic.OutboxMessage) error {
	var pl payload
	if err := json.Unmarshal(m.Payload, &pl); err != nil {
		return err
	}
	if p.delay > 0 {
		p.mu.Lock()
		d := time.Duration(p.rng.Int64N(int64(p.delay)))
		p.mu.Unlock()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if m.Topic != "test" || pl.Key != m.Key {
		p.violations = append(p.violations, fmt.Sprintf("unexpected message %d topic %q key %q payload %s", m.ID, m.Topic, m.Key, m.Payload))
		return nil
	}
	if p.rng.Float64() < p.failRate {
		p.failures++
		return errFlaky
	}
	switch {
	case pl.Seq > p.done[m.Key]:
		p.violations = append(p.violations, fmt.Sprintf("key %s: seq %d published before seq %d", m.Key, pl.Seq, p.done[m.Key]))
	case pl.Seq == p.done[m.Key]:
		p.done[m.Key]++
	}
	p.successes[m.ID]++
	p.order[m.Key] = append(p.order[m.Key], pl.Seq)
	return nil
}

// check fails the test on order violations and on keys not fully delivered,
// and returns the number of duplicate successful deliveries.
func (p *recorder) check(t *testing.T, keys []string, perKey int) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.violations {
		t.Error(v)
	}
	for _, k := range keys {
		if p.done[k] != perKey {
			t.Errorf("key %s: %d messages delivered in order, want %d", k, p.done[k], perKey)
		}
	}
	dups := 0
	for _, n := range p.successes {
		dups += n - 1
	}
	return dups
}

// waitDelivered waits until no message is pending.
func waitDelivered(t *testing.T, drv storage.Driver, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pending, err := drv.OutboxList(context.Background(), storage.OutboxListParams{PendingOnly: true, Limit: 10})
		if err != nil {
			t.Fatalf("OutboxList: %v", err)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d+ messages still pending after %s; first: %+v", len(pending), timeout, *pending[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failingKey publishes every message but those of key, which fail.
func failingKey(key string) outbox.Publisher {
	return outbox.PublisherFunc(func(_ context.Context, m *acidic.OutboxMessage) error {
		if m.Key == key {
			return errors.New("down")
		}
		return nil
	})
}

// heldPublisher publishes once release is closed, or fails with its
// context's error when that ends first; started is closed when the first
// publish begins.
func heldPublisher() (pub outbox.Publisher, started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	pub = outbox.PublisherFunc(func(ctx context.Context, _ *acidic.OutboxMessage) error {
		once.Do(func() { close(started) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return pub, started, release
}

func newRelay(t *testing.T, drv storage.Driver, cfg outbox.Config) *outbox.Relay {
	t.Helper()
	r, err := outbox.New(drv, cfg)
	if err != nil {
		t.Fatalf("outbox.New: %v", err)
	}
	return r
}

func startRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func stopRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// runUntilIdle calls RunOnce until a call claims nothing.
func runUntilIdle(t *testing.T, r *outbox.Relay) (total outbox.Result) {
	t.Helper()
	for range 10000 {
		res, err := r.RunOnce(ctxT(t))
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		total.Claimed += res.Claimed
		total.Delivered += res.Delivered
		total.Failed += res.Failed
		total.Deferred += res.Deferred
		if res.Claimed == 0 {
			return total
		}
	}
	t.Fatal("RunOnce never went idle")
	return total
}

func listAll(t *testing.T, drv storage.Driver) []*acidic.OutboxMessage {
	t.Helper()
	all, err := drv.OutboxList(context.Background(), storage.OutboxListParams{PendingOnly: false, Limit: 100000})
	if err != nil {
		t.Fatalf("OutboxList: %v", err)
	}
	return all
}
