package storagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func outboxIDs(msgs []*acidic.OutboxMessage) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func claimOutbox(ctx context.Context, t *testing.T, drv storage.Driver, limit int) []*acidic.OutboxMessage {
	t.Helper()
	msgs, err := drv.OutboxClaim(ctx, storage.OutboxClaimParams{Limit: limit, Lease: time.Hour})
	if err != nil {
		t.Fatalf("OutboxClaim(%d): %v", limit, err)
	}
	return msgs
}

func listOutbox(ctx context.Context, t *testing.T, drv storage.Driver, pendingOnly bool, limit int) []*acidic.OutboxMessage {
	t.Helper()
	msgs, err := drv.OutboxList(ctx, storage.OutboxListParams{PendingOnly: pendingOnly, Limit: limit})
	if err != nil {
		t.Fatalf("OutboxList: %v", err)
	}
	return msgs
}

// testOutbox: messages of one key are claimed one at a time in id order
// (the key's head), a claim leases the message, writes for a claim that is
// no longer current change nothing, a release gives the attempt back, and
// delivered messages are pruned after their retention.
func testOutbox(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "k")
	l := newListener(ctx, t, drv, storage.TopicOutbox)

	if err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{
		{Topic: "t", Key: "k1", Payload: json.RawMessage(`{"n":1}`)},
		{Topic: "t", Key: "k1", Payload: json.RawMessage(`{"n":2}`)},
		{Topic: "u", Key: "k2", Payload: json.RawMessage(`{"n":3}`), RunID: r.ID},
	}}); err != nil {
		t.Fatalf("OutboxInsert: %v", err)
	}
	if n := waitOne(ctx, t, l); n.Topic != storage.TopicOutbox {
		t.Errorf("notification %+v, want one on %s", n, storage.TopicOutbox)
	}
	all := listOutbox(ctx, t, drv, false, 10)
	if len(all) != 3 {
		t.Fatalf("OutboxList = %d messages, want 3", len(all))
	}
	m1, m2, m3 := all[0], all[1], all[2]
	if m1.ID >= m2.ID || m2.ID >= m3.ID || m1.Key != "k1" || m3.Topic != "u" || m3.RunID != r.ID || !jsonEqual(t, m2.Payload, []byte(`{"n":2}`)) ||
		m1.Attempts != 0 || m1.DeliveredAt != nil || m1.LastError != "" {
		t.Fatalf("stored messages = %+v %+v %+v, want them as inserted, in order", m1, m2, m3)
	}

	// Heads only, by id, at most limit; a claim leases the message.
	before := time.Now()
	first := claimOutbox(ctx, t, drv, 1)
	if !slices.Equal(outboxIDs(first), []int64{m1.ID}) || first[0].Attempts != 1 || !first[0].NextAttemptAt.After(before.Add(30*time.Minute)) {
		t.Fatalf("OutboxClaim(1) = %+v, want m1 at attempt 1, leased for an hour", first)
	}
	if got := claimOutbox(ctx, t, drv, 10); !slices.Equal(outboxIDs(got), []int64{m3.ID}) {
		t.Fatalf("OutboxClaim = %v, want only m3 (m2 waits behind m1, m1 is leased)", outboxIDs(got))
	}
	if got := claimOutbox(ctx, t, drv, 10); len(got) != 0 {
		t.Fatalf("OutboxClaim of leased heads = %v, want nothing", outboxIDs(got))
	}

	// A failure of a claim that is not current changes nothing; of the
	// current one, it records the error and makes the message due.
	if err := drv.OutboxFailed(ctx, storage.OutboxFailedParams{ID: m3.ID, Attempt: 7, RetryIn: 0, Error: "stale"}); err != nil {
		t.Fatalf("OutboxFailed: %v", err)
	}
	if err := drv.OutboxFailed(ctx, storage.OutboxFailedParams{ID: m1.ID, Attempt: 1, RetryIn: 0, Error: "broker down"}); err != nil {
		t.Fatalf("OutboxFailed: %v", err)
	}
	again := claimOutbox(ctx, t, drv, 10)
	if len(again) != 1 || again[0].ID != m1.ID || again[0].Attempts != 2 || again[0].LastError != "broker down" {
		t.Fatalf("OutboxClaim after a failure = %+v, want m1 at attempt 2 with its error (m3's stale failure ignored)", again)
	}

	// A release of an old claim changes nothing; of the current one, the
	// message is due again and the attempt does not count.
	if err := drv.OutboxRelease(ctx, storage.OutboxReleaseParams{Claims: []storage.OutboxClaim{{ID: m1.ID, Attempt: 1}}}); err != nil {
		t.Fatalf("OutboxRelease: %v", err)
	}
	if got := claimOutbox(ctx, t, drv, 10); len(got) != 0 {
		t.Fatalf("OutboxClaim after a stale release = %v, want nothing", outboxIDs(got))
	}
	if err := drv.OutboxRelease(ctx, storage.OutboxReleaseParams{Claims: []storage.OutboxClaim{{ID: m1.ID, Attempt: 2}}}); err != nil {
		t.Fatalf("OutboxRelease: %v", err)
	}
	released := claimOutbox(ctx, t, drv, 10)
	if len(released) != 1 || released[0].ID != m1.ID || released[0].Attempts != 2 || released[0].LastError != "broker down" {
		t.Fatalf("OutboxClaim after a release = %+v, want m1 at attempt 2 again, its error kept", released)
	}

	// Delivered: the key's next message is its head.
	if err := drv.OutboxDelivered(ctx, storage.OutboxDeliveredParams{IDs: []int64{m1.ID}}); err != nil {
		t.Fatalf("OutboxDelivered: %v", err)
	}
	if got := claimOutbox(ctx, t, drv, 10); !slices.Equal(outboxIDs(got), []int64{m2.ID}) {
		t.Fatalf("OutboxClaim after m1 was delivered = %v, want m2", outboxIDs(got))
	}
	if got := outboxIDs(listOutbox(ctx, t, drv, true, 10)); !slices.Equal(got, []int64{m2.ID, m3.ID}) {
		t.Errorf("OutboxList(pending) = %v, want m2, m3", got)
	}
	if got := outboxIDs(listOutbox(ctx, t, drv, false, 1)); !slices.Equal(got, []int64{m1.ID}) {
		t.Errorf("OutboxList(limit 1) = %v, want m1", got)
	}
	if d := listOutbox(ctx, t, drv, false, 1)[0]; d.DeliveredAt == nil {
		t.Errorf("delivered message has no delivery time: %+v", d)
	}

	// A key whose delivered messages come first: its next undelivered one
	// is its head.
	if err := drv.OutboxDelivered(ctx, storage.OutboxDeliveredParams{IDs: []int64{m3.ID}}); err != nil {
		t.Fatalf("OutboxDelivered: %v", err)
	}
	if err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{{Topic: "u", Key: "k2", Payload: json.RawMessage(`{"n":4}`)}}}); err != nil {
		t.Fatalf("OutboxInsert: %v", err)
	}
	m4 := listOutbox(ctx, t, drv, false, 10)[3]
	if got := claimOutbox(ctx, t, drv, 10); !slices.Equal(outboxIDs(got), []int64{m4.ID}) {
		t.Fatalf("OutboxClaim after m3 was delivered = %v, want m4 (%d)", outboxIDs(got), m4.ID)
	}

	if n, err := drv.OutboxPrune(ctx, storage.OutboxPruneParams{Retention: time.Hour, Limit: 10}); err != nil || n != 0 {
		t.Errorf("OutboxPrune(1h) = %d, %v; want 0", n, err)
	}
	if n, err := drv.OutboxPrune(ctx, storage.OutboxPruneParams{Retention: 0, Limit: 1}); err != nil || n != 1 {
		t.Errorf("OutboxPrune(0, limit 1) = %d, %v; want 1", n, err)
	}
	if n, err := drv.OutboxPrune(ctx, storage.OutboxPruneParams{Retention: 0, Limit: 10}); err != nil || n != 1 {
		t.Errorf("OutboxPrune(0) = %d, %v; want 1 (the delivered messages only)", n, err)
	}
	if got := outboxIDs(listOutbox(ctx, t, drv, false, 10)); !slices.Equal(got, []int64{m2.ID, m4.ID}) {
		t.Errorf("OutboxList after pruning = %v, want m2, m4", got)
	}
}

// testOutboxClaimConcurrent: concurrent relays never claim one message
// twice.
func testOutboxClaimConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	const total, relays = 60, 4
	in := make([]storage.OutboxInsert, total)
	for i := range in {
		in[i] = storage.OutboxInsert{Topic: "t", Key: fmt.Sprintf("k%d", i), Payload: json.RawMessage(`{}`)}
	}
	if err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: in}); err != nil {
		t.Fatalf("OutboxInsert: %v", err)
	}
	var (
		mu      sync.Mutex
		claimed = map[int64]int{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				msgs, err := drv.OutboxClaim(ctx, storage.OutboxClaimParams{Limit: 3, Lease: time.Hour})
				if err != nil {
					t.Errorf("OutboxClaim: %v", err)
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				for _, m := range msgs {
					claimed[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(claimed) != total {
		t.Errorf("%d messages claimed, want %d", len(claimed), total)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("message %d claimed %d times", id, n)
		}
	}
}
