package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// RefundKind is the job kind of a refund.
const RefundKind = "refund"

// RefundQueue is the refunds' queue: a queue of their own, so that the
// example's client, working only it, never takes another example's jobs
// from a store they share (./acidic.db).
const RefundQueue = "refunds"

// RefundArgs are a refund job's arguments.
type RefundArgs struct {
	OrderID int64  `json:"order_id"`
	Reason  string `json:"reason"`
}

// errUnknownOrder is what the payment provider answers for order totals of 99
// in this example: the refund fails.
var errUnknownOrder = errors.New("payment provider: unknown order")

// refundOptions define the refund kind in one place, beside its worker:
// every refund, wherever it is enqueued, is unique forever per order
// (whatever the reason), over every state, with a single attempt: a refund
// is tried at most once, ever.
func refundOptions() queue.KindOptions {
	return queue.KindOptions{
		Queue:       RefundQueue,
		MaxAttempts: 1,
		Unique: &queue.UniqueOptions{
			ArgKeys: []string{"order_id"},
			States:  queue.AllStates(),
		},
	}
}

// debounced asks for a refund in delay, pushing an earlier request for the
// same order further out (and taking its reason) while it has not run yet.
func debounced(delay time.Duration) queue.EnqueueOptions {
	return queue.EnqueueOptions{
		ScheduleIn: delay,
		Unique:     refundOptions().Unique,
		Replace:    &queue.ReplaceOptions{ScheduledAt: true, Args: true},
	}
}

// orders is the shop's order table, refund_orders, next to Acidic's (in the
// SQLite file, or in the store's schema on PostgreSQL: storeurl.Open makes
// it the pool's search_path), written with SQL both drivers accept
// (storage.SQL).
type orders struct {
	db storage.SQL
}

func newOrders(ctx context.Context, drv storage.Driver) (*orders, error) {
	o := &orders{db: storage.SQLOf(drv)}
	_, err := o.db.Exec(ctx, `CREATE TABLE IF NOT EXISTS refund_orders
		(id BIGINT PRIMARY KEY, total BIGINT NOT NULL, refunded_at_us BIGINT, refund_reason TEXT)`)
	return o, err
}

func (o *orders) add(ctx context.Context, id int64, total int) error {
	_, err := o.db.Exec(ctx, "INSERT INTO refund_orders (id, total) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", id, total)
	return err
}

// refund is the worker: it refunds the order through the (pretend) payment
// provider and records it.
func (o *orders) refund(ctx context.Context, job *acidic.Job, args RefundArgs) error {
	var total int
	if err := o.db.QueryRow(ctx, "SELECT total FROM refund_orders WHERE id = $1", args.OrderID).Scan(&total); err != nil {
		return fmt.Errorf("order %d: %w", args.OrderID, err)
	}
	if total == 99 {
		return errUnknownOrder
	}
	_, err := o.db.Exec(ctx, "UPDATE refund_orders SET refunded_at_us = $3, refund_reason = $2 WHERE id = $1",
		args.OrderID, args.Reason, time.Now().UnixMicro())
	return err
}

// workers defines the refund kind: its worker and its options.
func (o *orders) workers() *queue.Workers {
	ws := queue.NewWorkers()
	if err := queue.HandleArgs(ws, RefundKind, o.refund, refundOptions()); err != nil {
		panic(err) // a fresh registry cannot already hold the kind
	}
	return ws
}
