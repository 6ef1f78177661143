// Command refund shows unique, at-most-once jobs with Acidic's queue: a
// refund is enqueued at most once per order, ever, tried exactly once, and
// a second request for the same order is answered with the first job.
//
//	go run ./examples/refund -order 1 -total 2500
//	go run ./examples/refund -order 2 -total 99   # the provider fails: discarded
//	go run ./examples/refund -order 3 -debounce 2s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage/storeurl"
)

func main() {
	var (
		url      = flag.String("database", "", "the store: a PostgreSQL URL or sqlite:PATH (default: $DATABASE_URL, else the SQLite file at $ACIDIC_DB, else ./acidic.db)")
		schema   = flag.String("schema", "acidic_refund_example", "PostgreSQL schema for Acidic's tables and the example's orders")
		order    = flag.Int64("order", 1, "order id")
		total    = flag.Int("total", 2500, "order total in cents (99 makes the provider fail)")
		debounce = flag.Duration("debounce", 0, "schedule the refund this far out, and show a second request pushing it later")
	)
	flag.Parse()
	src, err := storeurl.FromEnv(nil)
	if *url != "" {
		src, err = storeurl.Source{URL: *url, From: "-database"}, nil
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "refund:", err)
		os.Exit(2)
	}
	if _, ok := src.SQLitePath(); ok {
		*schema = "" // a SQLite file has no schemas
	}
	if err := run(src, *schema, *order, *total, *debounce); err != nil {
		fmt.Fprintln(os.Stderr, "refund:", err)
		os.Exit(1)
	}
}

func run(src storeurl.Source, schema string, orderID int64, total int, debounce time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := storeurl.Open(ctx, src, storeurl.Options{Schema: schema, Migrate: true})
	if err != nil {
		return err
	}
	defer st.Close()
	drv := st.Driver
	fmt.Printf("store: %s\n", st.Source)
	shop, err := newOrders(ctx, drv)
	if err != nil {
		return err
	}
	if err := shop.add(ctx, orderID, total); err != nil {
		return err
	}
	client, err := queue.New(drv, queue.Config{
		Workers: shop.workers(),
		Queues:  map[string]queue.QueueConfig{RefundQueue: {MaxWorkers: 2}},
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}

	opts := queue.EnqueueOptions{}
	if debounce > 0 {
		opts = debounced(debounce)
	}
	job, err := client.Enqueue(ctx, RefundKind, RefundArgs{OrderID: orderID, Reason: "it was cold"}, opts)
	if err != nil {
		return err
	}
	describe("first request ", job)
	if debounce > 0 {
		time.Sleep(debounce / 2)
		job, err = client.Enqueue(ctx, RefundKind, RefundArgs{OrderID: orderID, Reason: "cold, and late"}, debounced(debounce))
		if err != nil {
			return err
		}
		describe("second request", job)
	}

	if err := client.Start(ctx); err != nil {
		return err
	}
	final, err := waitFinal(ctx, client, job.ID)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if stopErr := client.Stop(stopCtx); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	describe("outcome       ", final)
	for _, e := range final.Errors {
		fmt.Printf("  attempt %d failed: %s\n", e.Attempt, e.Error)
	}

	again, err := client.Enqueue(ctx, RefundKind, RefundArgs{OrderID: orderID, Reason: "asking again"}, queue.EnqueueOptions{})
	if err != nil {
		return err
	}
	describe("another request", again)
	return nil
}

func describe(label string, j *acidic.Job) {
	what := "new job"
	if j.Duplicate {
		what = "duplicate of the existing job"
	}
	fmt.Printf("%s: job %d %s, %s, attempt %d of %d, scheduled %s, args %s\n",
		label, j.ID, what, j.State, j.Attempt, j.MaxAttempts, j.ScheduledAt.Format("15:04:05.000"), j.Args)
}

func waitFinal(ctx context.Context, c *queue.Client, id int64) (*acidic.Job, error) {
	for {
		j, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State.Final() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, fmt.Errorf("job %d still %s: %w", id, j.State, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
