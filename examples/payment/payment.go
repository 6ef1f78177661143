package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// paymentArgs are a run's arguments: which order to charge, and how much.
type paymentArgs struct {
	OrderID     string `json:"order_id"`
	AmountCents int    `json:"amount_cents"`
}

// paymentState is the run's persisted state: saved with every step that
// commits, and handed to the next step (even in another process).
type paymentState struct {
	ChargeID string `json:"charge_id,omitempty"`
	LedgerID int64  `json:"ledger_id,omitempty"`
}

// receipt is the result of the last step, hence of the run.
type receipt struct {
	OrderID     string    `json:"order_id"`
	AmountCents int       `json:"amount_cents"`
	ChargeID    string    `json:"charge_id"`
	LedgerID    int64     `json:"ledger_id"`
	SentAt      time.Time `json:"sent_at"`
}

// payment holds what the steps need besides their context.
type payment struct {
	schema  string
	gateway *gateway
	out     io.Writer
	// crashAfter and crash simulate a crash between two steps; see crashPoint.
	crashAfter string
	crash      func(after string) error
	crashed    chan error
}

// paymentRun is what each step of the payment works on: the step's context
// (the run's arguments in Args, its persisted state in State, the step's
// transaction and idempotency key), typed here once, and the payment's
// collaborators. Each step is a method of it.
type paymentRun struct {
	*steps.Context[paymentArgs, paymentState]
	*payment
}

// workflow defines the payment: three steps, each committed in its own
// transaction together with the run's progress. The workflow is also its
// typed handle: p.workflow().EnqueueTx(ctx, eng, tx, paymentArgs{...}, opts)
// takes paymentArgs, and its Wait returns the run with its state decoded.
func (p *payment) workflow() *workflow.Workflow[paymentArgs, paymentState] {
	on := steps.Bind(func(sc *steps.Context[paymentArgs, paymentState]) paymentRun { return paymentRun{sc, p} })
	return workflow.Define("payment", workflow.Options{
		// One run per order: enqueueing order-1 again returns its run.
		Key: run.By(func(a paymentArgs) (string, error) { return a.OrderID, nil }),
	},
		on.Do("charge", paymentRun.charge),
		on.Do("ledger", paymentRun.ledger),
		on.Do("receipt", paymentRun.receipt),
	)
}

// charge asks the gateway for the money. The gateway is outside our database,
// so this step cannot roll it back: if we died after the gateway answered but
// before the step committed, the step would run again. It passes the step's
// idempotency key, the same on every retry of this step of this run, so the
// gateway then returns the first charge instead of charging twice.
func (r paymentRun) charge(ctx context.Context) error {
	c, err := r.gateway.Charge(ctx, r.IdempotencyKey(), r.Args.AmountCents)
	if err != nil {
		return err // nothing committed; the step is retried with backoff
	}
	r.State.ChargeID = c.ID // persisted when the step commits
	how := "new charge"
	if !c.New {
		how = "replayed earlier charge"
	}
	fmt.Fprintf(r.out, "  charge:  gateway %s %s (%d cents)\n", how, c.ID, c.AmountCents)
	return nil
}

// ledger books the payment and marks the order paid, in the step's own
// transaction (sc.SQL(), the same on SQLite and PostgreSQL): these writes
// commit together with "ledger is done", or not at all, so a retry never
// finds half of them. The entry's number is the next one in the ledger,
// computed in the same transaction (serializable on both drivers);
// unique(order_id) is only a safety net.
func (r paymentRun) ledger(ctx context.Context) error {
	if err := r.crashPoint("charge", "ledger"); err != nil {
		return err
	}
	db := r.SQL()
	err := db.QueryRow(ctx, r.sql(`INSERT INTO {schema}.ledger (id, order_id, amount_cents, charge_id)
		SELECT coalesce(max(id), 0) + 1, CAST($1 AS TEXT), CAST($2 AS BIGINT), CAST($3 AS TEXT) FROM {schema}.ledger
		RETURNING id`),
		r.Args.OrderID, r.Args.AmountCents, r.State.ChargeID).Scan(&r.State.LedgerID)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if _, err := db.Exec(ctx, r.sql(`UPDATE {schema}.orders SET status = 'paid' WHERE id = $1`), r.Args.OrderID); err != nil {
		return fmt.Errorf("mark order paid: %w", err)
	}
	fmt.Fprintf(r.out, "  ledger:  entry %d for charge %s; order %s paid\n", r.State.LedgerID, r.State.ChargeID, r.Args.OrderID)
	return nil
}

// receipt records the receipt in the step's transaction and makes it the
// run's result. Its time is taken in Go and stored as Unix microseconds:
// the portable way to keep a time on both drivers (see storage.SQL).
func (r paymentRun) receipt(ctx context.Context) error {
	if err := r.crashPoint("ledger", "receipt"); err != nil {
		return err
	}
	sent := time.Now().UTC().Truncate(time.Microsecond)
	rc := receipt{OrderID: r.Args.OrderID, AmountCents: r.Args.AmountCents, ChargeID: r.State.ChargeID, LedgerID: r.State.LedgerID, SentAt: sent}
	_, err := r.SQL().Exec(ctx, r.sql(`INSERT INTO {schema}.receipts (order_id, sent_at_us) VALUES ($1, $2)`), r.Args.OrderID, sent.UnixMicro())
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	fmt.Fprintf(r.out, "  receipt: sent for order %s\n", r.Args.OrderID)
	return r.SetResult(rc)
}

// crashPoint simulates the process dying right after step `after` committed.
// It is the first line of the next step: the engine starts a step only once
// the previous one has committed, and this step has done nothing yet (its
// open transaction dies with the connection), so dying here is exactly a
// crash between the two steps. The program's crash hook calls os.Exit(3);
// tests cannot exit, so theirs returns an error, which fails this step
// before it does anything.
func (p *payment) crashPoint(after, next string) error {
	if p.crashAfter != after {
		return nil
	}
	fmt.Fprintf(p.out, "  -crash-after=%s: %s has committed; the process dies before %s runs\n", after, after, next)
	err := p.crash(after)
	select {
	case p.crashed <- err:
	default:
	}
	return err
}

func (p *payment) sql(s string) string { return inSchema(p.schema, s) }

// createTables makes the example's own tables, next to Acidic's, with DDL
// both SQLite and PostgreSQL accept. schema is the driver's (drv.Schema():
// the PostgreSQL schema, or "main", a SQLite file's own).
func createTables(ctx context.Context, db storage.SQL, schema string) error {
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS {schema}.orders (
			id           TEXT   PRIMARY KEY,
			amount_cents BIGINT NOT NULL,
			status       TEXT   NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS {schema}.ledger (
			id           BIGINT PRIMARY KEY,
			order_id     TEXT   NOT NULL UNIQUE,
			amount_cents BIGINT NOT NULL,
			charge_id    TEXT   NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS {schema}.receipts (
			order_id   TEXT   PRIMARY KEY,
			sent_at_us BIGINT NOT NULL)`,
	} {
		if _, err := db.Exec(ctx, inSchema(schema, ddl)); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	return nil
}

// inSchema replaces {schema} in s with the quoted schema name. The other
// examples name their tables plainly (storeurl.Open makes the store's
// schema the pool's search_path); the payment qualifies them because its
// workflow also runs under acidictest.EachFault, whose PostgreSQL cases
// share one pool across their schemas, none of them its search_path. On
// SQLite the schema is "main", the file, which accepts the qualifier too.
func inSchema(schema, s string) string {
	return strings.ReplaceAll(s, "{schema}", `"`+strings.ReplaceAll(schema, `"`, `""`)+`"`)
}
