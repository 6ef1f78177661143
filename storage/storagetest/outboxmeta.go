package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// testOutboxMeta: a message's Meta is stored as given and returned by
// OutboxList and OutboxClaim, staged on the driver or in a transaction; a
// message without Meta reads back nil; Meta that is not JSON is
// acidic.ErrInvalid, and nothing of the batch is written.
func testOutboxMeta(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "k")

	traced := json.RawMessage(`{"otel":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"n":[1,2]}`)
	if err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{
		{Topic: "t", Key: "a", Payload: json.RawMessage(`1`), Meta: traced},
		{Topic: "t", Key: "b", Payload: json.RawMessage(`2`)},
	}}); err != nil {
		t.Fatalf("OutboxInsert: %v", err)
	}
	inTx := json.RawMessage(`{"otel":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v"}}`)
	if err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		return tx.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{
			{Topic: "t", Key: "c", Payload: json.RawMessage(`3`), RunID: r.ID, Meta: inTx},
		}})
	}); err != nil {
		t.Fatalf("OutboxInsert in a transaction: %v", err)
	}

	check := func(how string, msgs []*acidic.OutboxMessage) {
		t.Helper()
		if len(msgs) != 3 {
			t.Fatalf("%s: %d messages, want 3", how, len(msgs))
		}
		if !jsonEqual(t, msgs[0].Meta, traced) || msgs[1].Meta != nil || !jsonEqual(t, msgs[2].Meta, inTx) || msgs[2].RunID != r.ID {
			t.Errorf("%s: Meta = %s, %s (nil: %t), %s; want them as staged", how, msgs[0].Meta, msgs[1].Meta, msgs[1].Meta == nil, msgs[2].Meta)
		}
	}
	check("OutboxList", listOutbox(ctx, t, drv, true, 10))
	check("OutboxClaim", claimOutbox(ctx, t, drv, 10))

	for _, bad := range []json.RawMessage{json.RawMessage(`{"otel":`), json.RawMessage("{\"s\":\"\\u0000\"}")} {
		err := drv.OutboxInsert(ctx, storage.OutboxInsertParams{Messages: []storage.OutboxInsert{
			{Topic: "t", Key: "d", Payload: json.RawMessage(`4`)},
			{Topic: "t", Key: "e", Payload: json.RawMessage(`5`), Meta: bad},
		}})
		if !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("OutboxInsert with Meta %s = %v, want acidic.ErrInvalid", bad, err)
		}
	}
	if n := len(listOutbox(ctx, t, drv, false, 10)); n != 3 {
		t.Errorf("%d messages stored after the refused inserts, want 3", n)
	}
}
