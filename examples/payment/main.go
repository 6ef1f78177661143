// Command payment shows a durable payment workflow on Acidic: charge a card
// through a (fake) gateway, book the ledger, record a receipt, one committed
// step at a time. Kill it between two steps with -crash-after, run it again,
// and the run resumes at the next step: the card is charged once and the
// ledger has one entry. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/storeurl"
	"github.com/acidic-go/acidic/workflow"
)

// config is what one invocation does.
type config struct {
	// Store is the store to open (storeurl.FromEnv: DATABASE_URL, else the
	// SQLite file at ACIDIC_DB, else ./acidic.db).
	Store storeurl.Source
	// Driver is used instead of Store when set (tests); it must be
	// migrated.
	Driver storage.Driver
	// Schema holds Acidic's and the example's tables on PostgreSQL; a
	// SQLite file has none.
	Schema     string
	Order      string
	Amount     int
	CrashAfter string // "", "charge" or "ledger"
	// Crash is called at the crash point (see payment.crashPoint). The
	// program exits there with status 3; a test returns an error instead.
	Crash   func(after string) error
	Timeout time.Duration
	Out     io.Writer
	Logger  *slog.Logger
}

// defaultSchema is the PostgreSQL schema the acidic command reads by default:
// ACIDIC_SCHEMA, else Acidic's default schema. Using it here means that
// `acidic runs list` finds the example's runs with no flag.
func defaultSchema(getenv func(string) string) string {
	if s := getenv("ACIDIC_SCHEMA"); s != "" {
		return s
	}
	return postgres.DefaultSchema
}

// errCrashed is returned by runPayment when the crash hook returned (tests).
var errCrashed = errors.New("simulated crash")

// report is what runPayment found once the run finished.
type report struct {
	RunID      uuid.UUID
	Duplicate  bool // the run existed already: this invocation resumed or re-read it
	State      acidic.RunState
	Error      string
	Steps      []acidic.Step
	Final      paymentState // the run's persisted state
	Receipt    *receipt     // the run's result, once it succeeded
	Charges    int          // gateway charges for the run, by any process
	NewCharges int          // gateway charges made by this invocation
	LedgerRows int          // ledger rows for the order
	Receipts   int          // receipts for the order
}

func main() {
	cfg := config{
		Crash: func(string) error {
			os.Exit(3) // a real crash: no deferred cleanup, no graceful stop
			return nil
		},
		Out:    os.Stdout,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	flag.StringVar(&cfg.Schema, "schema", defaultSchema(os.Getenv), "PostgreSQL schema for Acidic's and the example's tables: $ACIDIC_SCHEMA when set, as for the acidic command")
	flag.StringVar(&cfg.Order, "order", "order-1", "order id (one payment run per order)")
	flag.IntVar(&cfg.Amount, "amount", 4200, "amount in cents")
	flag.StringVar(&cfg.CrashAfter, "crash-after", "", `exit with status 3 right after this step commits: "charge" or "ledger"`)
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up if the run has not finished by then")
	flag.Parse()
	// The store: DATABASE_URL (PostgreSQL, or sqlite:PATH), else the
	// SQLite file at ACIDIC_DB, else ./acidic.db; the acidic command
	// chooses the same way.
	src, err := storeurl.FromEnv(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(2)
	}
	cfg.Store = src

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	rep, err := runPayment(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if rep.State != acidic.RunSucceeded {
		os.Exit(1)
	}
}

// runPayment enqueues the order's payment (or finds it), works it until it
// finishes, and reports what happened.
func runPayment(ctx context.Context, cfg config) (rep report, err error) {
	switch cfg.CrashAfter {
	case "", "charge", "ledger":
	default:
		return rep, fmt.Errorf(`-crash-after=%q: want "charge" or "ledger"`, cfg.CrashAfter)
	}
	if cfg.CrashAfter != "" && cfg.Crash == nil {
		return rep, errors.New("-crash-after needs a crash hook")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	// Open the store (a bad path or URL fails here, before anything is
	// written), migrate Acidic's tables, create the example's.
	drv := cfg.Driver
	if drv == nil {
		st, err := storeurl.Open(ctx, cfg.Store, storeurl.Options{Schema: cfg.Schema, Migrate: true})
		if err != nil {
			return rep, err
		}
		defer st.Close()
		drv = st.Driver
		fmt.Fprintf(cfg.Out, "store: %s\n", st.Source)
	}
	db := storage.SQLOf(drv) // the store's SQL, outside any transaction
	if err := createTables(ctx, db, drv.Schema()); err != nil {
		return rep, err
	}
	gw, err := newGateway(ctx, db, drv.Schema())
	if err != nil {
		return rep, err
	}

	p := &payment{schema: drv.Schema(), gateway: gw, out: cfg.Out,
		crashAfter: cfg.CrashAfter, crash: cfg.Crash, crashed: make(chan error, 1)}
	eng, err := workflow.NewEngine(drv, engineConfig(cfg.Logger))
	if err != nil {
		return rep, err
	}
	// The workflow is its own typed handle: enqueue and wait through it.
	payments := p.workflow()
	if err := eng.Register(payments); err != nil {
		return rep, err
	}

	// The order and its payment run commit together: there is never an
	// order without its payment, nor a payment without its order.
	args := paymentArgs{OrderID: cfg.Order, AmountCents: cfg.Amount}
	var res *workflow.EnqueueResult
	err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		_, err := storage.SQLOf(tx).Exec(ctx, inSchema(drv.Schema(), `INSERT INTO {schema}.orders (id, amount_cents, status)
			VALUES ($1, $2, 'pending') ON CONFLICT (id) DO NOTHING`), args.OrderID, args.AmountCents)
		if err != nil {
			return err
		}
		res, err = payments.EnqueueTx(ctx, eng, tx, args, workflow.EnqueueOptions{})
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("enqueue order %s: %w", args.OrderID, err)
	}
	rep.RunID, rep.Duplicate = res.Run.ID, res.Duplicate
	switch {
	case res.Duplicate && res.Run.State.Final():
		fmt.Fprintf(cfg.Out, "order %s: already enqueued as run %s, which has %s\n", args.OrderID, res.Run.ID, res.Run.State)
		if cfg.CrashAfter != "" {
			fmt.Fprintf(cfg.Out, "  (nothing left to crash: try another order, e.g. -order %s-b)\n", args.OrderID)
		}
	case res.Duplicate:
		// A run left "running" by a process that died is picked up once its
		// job is rescued (see engineConfig).
		fmt.Fprintf(cfg.Out, "order %s: already enqueued as run %s (%s); resuming at step %q\n",
			args.OrderID, res.Run.ID, res.Run.State, res.Run.RecoveryPoint)
	default:
		fmt.Fprintf(cfg.Out, "order %s: enqueued payment run %s for %d cents\n", args.OrderID, res.Run.ID, args.AmountCents)
	}

	// Work the queue until the run finishes.
	if err := eng.Start(ctx); err != nil {
		return rep, err
	}
	stopped := false
	stopEngine := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return eng.Stop(stopCtx)
	}
	defer func() { _ = stopEngine() }()
	r, err := waitForRun(ctx, eng, payments, res.Run.ID, p.crashed)
	if err != nil {
		return rep, err
	}
	if err := stopEngine(); err != nil {
		return rep, fmt.Errorf("stop engine: %w", err)
	}

	rep.State, rep.Error, rep.Steps, rep.Final = r.State, r.Error, r.Steps, r.Attrs
	if r.State == acidic.RunSucceeded {
		rc, err := acidic.DecodeResult[receipt](r.Run)
		if err != nil {
			return rep, err
		}
		rep.Receipt = &rc
	}
	rep.NewCharges = gw.Created()
	if rep.Charges, err = gw.Charges(ctx, r.ID.String()); err != nil {
		return rep, err
	}
	for sql, n := range map[string]*int{
		`SELECT count(*) FROM {schema}.ledger WHERE order_id = $1`:   &rep.LedgerRows,
		`SELECT count(*) FROM {schema}.receipts WHERE order_id = $1`: &rep.Receipts,
	} {
		if err := db.QueryRow(ctx, inSchema(drv.Schema(), sql), args.OrderID).Scan(n); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// engineConfig works the default queue with one worker. The heartbeat,
// rescue and leader-lease intervals are shorter than the defaults (2s, 30s
// and 15s): rescue is the leader's work, and a process that died leading
// keeps its lead until its lease ends; then the next process leads and
// rescues the dead process's job about 2s after its last heartbeat, so a
// crashed run resumes within seconds in this demo.
func engineConfig(logger *slog.Logger) workflow.Config {
	return workflow.Config{
		Logger: logger,
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 1}},
			HeartbeatInterval:   500 * time.Millisecond,
			RescueAfter:         2 * time.Second,
			MaintenanceInterval: 500 * time.Millisecond,
			LeaderLease:         2 * time.Second,
		},
	}
}

// waitForRun waits for the run to finish (the handle's Wait), for the
// context to end, or for the crash hook to return (tests).
func waitForRun(ctx context.Context, eng *workflow.Engine, payments *workflow.Workflow[paymentArgs, paymentState], id uuid.UUID, crashed <-chan error) (*workflow.RunOf[paymentArgs, paymentState], error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-crashed:
			cancel(fmt.Errorf("%w: %w", errCrashed, err))
		case <-ctx.Done():
		}
	}()
	r, err := payments.Wait(ctx, eng, id)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errCrashed) {
		return nil, cause
	}
	return r, err
}

// print writes the report for a human.
func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "run %s %s", r.RunID, r.State)
	if r.Error != "" {
		fmt.Fprintf(w, ": %s", r.Error)
	}
	fmt.Fprintln(w)
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  step %-8s %-10s executions=%d\n", s.Name, s.State, s.Executions)
	}
	fmt.Fprintf(w, "state:   charge %s, ledger entry %d\n", r.Final.ChargeID, r.Final.LedgerID)
	if r.Receipt != nil {
		fmt.Fprintf(w, "receipt: order %s, %d cents, sent %s\n", r.Receipt.OrderID, r.Receipt.AmountCents, r.Receipt.SentAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "gateway charges for this run: %d (new in this process: %d)\n", r.Charges, r.NewCharges)
	fmt.Fprintf(w, "ledger entries for the order: %d\n", r.LedgerRows)
	fmt.Fprintf(w, "receipts for the order:       %d\n", r.Receipts)
}
