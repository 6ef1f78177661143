package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

func startEngine(t *testing.T, drv storage.Driver, cfg workflow.Config, defs ...workflow.Definition) *workflow.Engine {
	t.Helper()
	e := enginetest.New(t, drv, cfg, defs...)
	enginetest.Start(t, e)
	return e
}

type orderArgs struct {
	OrderID string `json:"order_id"`
}

type email struct {
	To      string `json:"to"`
	OrderID string `json:"order_id"`
}

// A step publishes and then fails on its first attempt: the message staged by
// that attempt rolls back with it, and the relay delivers exactly the one
// message of the attempt that committed.
func TestWorkflowStepPublish(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var attempts atomic.Int64
		wf := workflow.Define("checkout", workflow.Options{MaxAttempts: 3, Backoff: shortBackoff},
			steps.Do("confirm", func(ctx context.Context, sc *steps.Context[orderArgs, struct{}]) error {
				n := attempts.Add(1)
				if err := sc.Publish(ctx, "emails", sc.Args.OrderID, email{To: "a@example.com", OrderID: sc.Args.OrderID}); err != nil {
					return err
				}
				if n == 1 {
					return errors.New("mailer template missing")
				}
				return nil
			}))
		e := startEngine(t, drv, enginetest.Config(2), wf)
		res, err := e.Enqueue(ctxT(t), "checkout", orderArgs{OrderID: "o-1"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		run := enginetest.WaitRun(t, e, res.Run.ID, acidic.RunSucceeded, acidic.RunFailed)
		if run.State != acidic.RunSucceeded {
			t.Fatalf("run %s: %s", run.State, run.Error)
		}
		if n := attempts.Load(); n != 2 {
			t.Fatalf("step ran %d times, want 2", n)
		}

		var got []*acidic.OutboxMessage
		r := newRelay(t, drv, outbox.Config{Publisher: outbox.PublisherFunc(func(_ context.Context, m *acidic.OutboxMessage) error {
			got = append(got, m) // Concurrency 1: no lock needed
			return nil
		}), Concurrency: 1})
		total := runUntilIdle(t, r)
		if total.Delivered != 1 || len(got) != 1 {
			t.Fatalf("relay delivered %+v (%d messages), want exactly 1", total, len(got))
		}
		m := got[0]
		var body email
		if err := json.Unmarshal(m.Payload, &body); err != nil {
			t.Fatal(err)
		}
		if m.Topic != "emails" || m.Key != "o-1" || m.RunID != run.ID || body != (email{To: "a@example.com", OrderID: "o-1"}) || m.Attempts != 1 {
			t.Fatalf("delivered %+v (payload %s)", *m, m.Payload)
		}
		if all := listAll(t, drv); len(all) != 1 {
			t.Fatalf("%d messages in the outbox, want 1: the failed attempt's must not exist", len(all))
		}
	})
}
