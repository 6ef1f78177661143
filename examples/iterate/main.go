// Command iterate shows a for-each step: an order's line items are reserved
// one at a time, each in its own transaction with the step's cursor. The
// warehouse fails at one item (-fail-at); the run fails there, with the
// items before it committed. Run the program again for the same order and it
// retries the run, which resumes at the failed item: no item is reserved
// twice. See README.md.
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
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/storeurl"
	"github.com/acidic-go/acidic/workflow"
)

// reservationsQueue is the example's queue: its alone, so the examples
// share a store (./acidic.db) without ever taking each other's jobs (an
// engine works only the queues it names).
const reservationsQueue = "iterate"

type lineItem struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// orderArgs are the run's arguments; one run per order (the key).
type orderArgs struct {
	Order string     `json:"order"`
	Items []lineItem `json:"items"`
}

// orderState is the run's persisted state, committed with each item.
type orderState struct {
	Reserved int `json:"reserved"` // units reserved so far
}

// errWarehouse is the warehouse's failure at the item -fail-at names.
var errWarehouse = errors.New("warehouse unavailable")

// reservations reserves the items of orders. db is the store's SQL outside
// any transaction (storage.SQLOf(drv)), where the warehouse logs its calls.
// failAt is the 1-based item at which the warehouse fails (0: never).
type reservations struct {
	db     storage.SQL
	failAt int
}

// reserve reserves one item: the warehouse call (outside, logged on its own
// connection, like a system our rollbacks cannot undo) and the reservation
// row, written in the step's transaction (sc.SQL(), the same on SQLite and
// PostgreSQL) with the advanced cursor, so a committed item is never
// reserved again. The warehouse is called before the step's first
// statement: the transaction begins there, and on SQLite it holds the
// file's write lock from then until it commits.
func (res *reservations) reserve(ctx context.Context, sc *steps.Context[orderArgs, orderState], item lineItem) error {
	n := int(sc.Cursor()) + 1
	if _, err := res.db.Exec(ctx, `INSERT INTO warehouse_calls (order_id, sku) VALUES ($1, $2)`, sc.Args.Order, item.SKU); err != nil {
		return err
	}
	if n == res.failAt {
		return fmt.Errorf("item %d (%s): %w", n, item.SKU, errWarehouse)
	}
	if _, err := sc.SQL().Exec(ctx, `INSERT INTO reservations (order_id, sku, qty) VALUES ($1, $2, $3)`, sc.Args.Order, item.SKU, item.Qty); err != nil {
		return err
	}
	sc.State.Reserved += item.Qty
	return nil
}

// workflow is the order's reservation: every item, then the confirmation.
// One attempt per step: a failure fails the run at once, to be retried by
// the next invocation.
func (res *reservations) workflow() *workflow.Workflow[orderArgs, orderState] {
	return workflow.Define[orderArgs, orderState]("reserve_order", workflow.Options{
		Queue:       reservationsQueue,
		MaxAttempts: 1,
		Key:         run.By(func(a orderArgs) (string, error) { return a.Order, nil }),
	}).
		Add(steps.ForEach("reserve_items",
			func(sc *steps.Context[orderArgs, orderState]) ([]lineItem, error) { return sc.Args.Items, nil },
			res.reserve, steps.ForEachOptions{})).
		Step("confirm", func(ctx context.Context, sc *steps.Context[orderArgs, orderState]) error {
			return sc.SetResult(fmt.Sprintf("%d units reserved", sc.State.Reserved))
		})
}

// config is what one invocation does.
type config struct {
	// Store is the store to open (storeurl.FromEnv: DATABASE_URL, else the
	// SQLite file at ACIDIC_DB, else ./acidic.db).
	Store storeurl.Source
	// Driver is used instead of Store when set (tests); it must be
	// migrated, and on PostgreSQL have its schema as its pool's
	// search_path, as storeurl.Open and the tests' testdb.New do.
	Driver storage.Driver
	// Schema holds Acidic's and the example's tables on PostgreSQL (""
	// is Acidic's default, "acidic"); a SQLite file has none.
	Schema  string
	Order   string
	FailAt  int
	Timeout time.Duration
	Logger  *slog.Logger
}

// report is what runOrder found once the run finished.
type report struct {
	Store   string // the store, when runOrder opened it
	RunID   uuid.UUID
	Retried bool // the run had failed, and this invocation retried it
	State   acidic.RunState
	Error   string
	Result  string
	Steps   []acidic.Step
	// Reserved and Calls count reservation rows and warehouse calls per SKU.
	Reserved, Calls map[string]int
}

func main() {
	cfg := config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	flag.StringVar(&cfg.Schema, "schema", os.Getenv("ACIDIC_SCHEMA"), "PostgreSQL schema for Acidic's and the example's tables (default $ACIDIC_SCHEMA, else acidic, as for the acidic command)")
	flag.StringVar(&cfg.Order, "order", "order-1", "order id (one run per order)")
	flag.IntVar(&cfg.FailAt, "fail-at", 0, "the warehouse fails at this item (1 to 5; 0: never)")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up if the run has not finished by then")
	flag.Parse()
	// The store: DATABASE_URL (PostgreSQL, or sqlite:PATH), else the
	// SQLite file at ACIDIC_DB, else ./acidic.db; the acidic command
	// chooses the same way.
	src, err := storeurl.FromEnv(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iterate:", err)
		os.Exit(2)
	}
	cfg.Store = src

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	rep, err := runOrder(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "iterate:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

// items are the order's five line items.
var items = []lineItem{{"apple", 3}, {"bread", 1}, {"cheese", 2}, {"dates", 6}, {"eggs", 12}}

// runOrder enqueues the order's run, or retries it if it failed, works it
// until it finishes, and reports.
func runOrder(ctx context.Context, cfg config) (rep report, err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	// Open the store (a bad path or URL fails here, before anything is
	// written) and migrate Acidic's tables, then create the example's. Its
	// SQL names its tables plainly: they are in the SQLite file, or, on
	// PostgreSQL, in the store's schema next to Acidic's (storeurl.Open
	// makes the schema the pool's search_path).
	drv := cfg.Driver
	if drv == nil {
		st, err := storeurl.Open(ctx, cfg.Store, storeurl.Options{Schema: cfg.Schema, Migrate: true})
		if err != nil {
			return rep, err
		}
		defer st.Close()
		drv, rep.Store = st.Driver, st.Source.String()
	}
	db := storage.SQLOf(drv) // the store's SQL, outside any transaction
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS reservations (order_id TEXT, sku TEXT, qty BIGINT)`,
		`CREATE TABLE IF NOT EXISTS warehouse_calls (order_id TEXT, sku TEXT)`,
	} {
		if _, err := db.Exec(ctx, ddl); err != nil {
			return rep, fmt.Errorf("create tables: %w", err)
		}
	}
	res := &reservations{db: db, failAt: cfg.FailAt}
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: cfg.Logger, Queue: queue.Config{
		Queues: map[string]queue.QueueConfig{reservationsQueue: {MaxWorkers: 1}},
	}})
	if err != nil {
		return rep, err
	}
	wf := res.workflow()
	if err := eng.Register(wf); err != nil {
		return rep, err
	}
	enq, err := wf.Enqueue(ctx, eng, orderArgs{Order: cfg.Order, Items: items}, workflow.EnqueueOptions{})
	if err != nil {
		return rep, err
	}
	rep.RunID = enq.Run.ID
	if enq.Duplicate && enq.Run.State == acidic.RunFailed {
		// Resume the failed run at its recovery point: the item that failed.
		if _, err := eng.Retry(ctx, enq.Run.ID); err != nil {
			return rep, err
		}
		rep.Retried = true
	}
	if err := eng.Start(ctx); err != nil {
		return rep, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = eng.Stop(stopCtx)
	}()
	r, err := wf.Wait(ctx, eng, enq.Run.ID)
	if err != nil {
		return rep, err
	}
	rep.State, rep.Error, rep.Steps = r.State, r.Error, r.Steps
	if r.State == acidic.RunSucceeded {
		if rep.Result, err = acidic.DecodeResult[string](r.Run); err != nil {
			return rep, err
		}
	}
	rep.Reserved, rep.Calls = map[string]int{}, map[string]int{}
	for sql, m := range map[string]map[string]int{
		`SELECT sku, count(*) FROM reservations WHERE order_id = $1 GROUP BY sku`:    rep.Reserved,
		`SELECT sku, count(*) FROM warehouse_calls WHERE order_id = $1 GROUP BY sku`: rep.Calls,
	} {
		if err := countBySKU(ctx, db, sql, cfg.Order, m); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// countBySKU reads the rows of a query of (sku, count) into m.
func countBySKU(ctx context.Context, db storage.SQL, sql, order string, m map[string]int) error {
	rows, err := db.Query(ctx, sql, order)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sku string
		var n int
		if err := rows.Scan(&sku, &n); err != nil {
			return err
		}
		m[sku] = n
	}
	return rows.Err()
}

func (r report) print(w io.Writer) {
	if r.Store != "" {
		fmt.Fprintf(w, "store: %s\n", r.Store)
	}
	fmt.Fprintf(w, "run %s %s (retried: %v)", r.RunID, r.State, r.Retried)
	if r.Error != "" {
		fmt.Fprintf(w, ": %s", r.Error)
	}
	if r.Result != "" {
		fmt.Fprintf(w, ": %s", r.Result)
	}
	fmt.Fprintln(w)
	for _, it := range items {
		fmt.Fprintf(w, "  %-7s reserved %d time(s), warehouse called %d time(s)\n", it.SKU, r.Reserved[it.SKU], r.Calls[it.SKU])
	}
}
