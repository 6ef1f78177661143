// Command fanout shows a workflow step that awaits plain queue jobs on two
// queues: once an order is confirmed, an email (queue "fanout_mailers") and
// an SMS (queue "fanout_sms") go out in parallel, and the order is marked notified once
// both have ended, exactly once, whichever finishes last. The SMS gateway
// fails the first attempts (-sms-failures); the run waits through the
// retries. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
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

// The example's queues: the workflow's own and one per notification. They
// are its alone, so the examples share a store (./acidic.db) without ever
// taking each other's jobs: an engine works only the queues it names.
const (
	ordersQueue  = "fanout"
	mailersQueue = "fanout_mailers"
	smsQueue     = "fanout_sms"
)

// Arguments of the two notification jobs, and their kinds: the typed
// handles that enqueue (Params) and work (Handle) them.
type emailArgs struct {
	Order string `json:"order"`
	To    string `json:"to"`
}

type smsArgs struct {
	Order string `json:"order"`
	Phone string `json:"phone"`
}

var (
	sendEmail = queue.NewKind[emailArgs]("send_email")
	sendSMS   = queue.NewKind[smsArgs]("send_sms")
)

// orderArgs are the run's arguments; one run per order (the key).
type orderArgs struct {
	Order string `json:"order"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// orderState is the run's persisted state.
type orderState struct {
	Channels []string `json:"channels"` // the notifications that went out
}

// orderRun is what each step works with: the typed step context.
type orderRun struct {
	*steps.Context[orderArgs, orderState]
}

// notifications returns the jobs step "notify" awaits, one per queue.
func (r orderRun) notifications(ctx context.Context) ([]queue.EnqueueParams, error) {
	return []queue.EnqueueParams{
		sendEmail.Params(emailArgs{Order: r.Args.Order, To: r.Args.Email}, queue.EnqueueOptions{Queue: mailersQueue}),
		sendSMS.Params(smsArgs{Order: r.Args.Order, Phone: r.Args.Phone}, queue.EnqueueOptions{Queue: smsQueue, MaxAttempts: 5}),
	}, nil
}

// markNotified runs once both jobs have ended (a job that did not complete
// would have failed the run before it): it reads what they did and marks
// the order notified, in the step's transaction (r.SQL(): the same on
// SQLite and PostgreSQL).
func (r orderRun) markNotified(ctx context.Context) error {
	jobs, err := r.ChildJobs(ctx, "notify")
	if err != nil {
		return err
	}
	for _, j := range jobs {
		r.State.Channels = append(r.State.Channels, fmt.Sprintf("%s (%d failed attempts)", j.Kind, len(j.Errors)))
	}
	_, err = r.SQL().Exec(ctx, `INSERT INTO notified (order_id, channels) VALUES ($1, $2)`, r.Args.Order, strings.Join(r.State.Channels, ", "))
	return err
}

// orderConfirmed is the workflow: two steps, the first awaiting two jobs.
func orderConfirmed() *workflow.Workflow[orderArgs, orderState] {
	on := steps.Bind(func(sc *steps.Context[orderArgs, orderState]) orderRun { return orderRun{sc} })
	return workflow.Define("order_confirmed", workflow.Options{
		Queue: ordersQueue,
		Key:   run.By(func(a orderArgs) (string, error) { return a.Order, nil }),
	},
		on.AwaitJobsFunc("notify", orderRun.notifications, steps.AwaitOptions{}),
		on.Do("mark_notified", orderRun.markNotified),
	)
}

// gateways are the fake email and SMS providers: each delivery is a row,
// written on the store outside any transaction (db is storage.SQLOf(drv)),
// idempotent (a retried job delivers once); the SMS gateway fails the
// first smsFailures attempts of each message (-1: every attempt).
type gateways struct {
	db          storage.SQL
	smsFailures int
}

func (g *gateways) deliver(ctx context.Context, channel, order string) error {
	_, err := g.db.Exec(ctx, `INSERT INTO deliveries (channel, order_id) VALUES ($1, $2)
		ON CONFLICT (channel, order_id) DO NOTHING`, channel, order)
	return err
}

// register adds the two workers.
func (g *gateways) register(ws *queue.Workers) error {
	fast := queue.KindOptions{Backoff: func(int, error) time.Duration { return 10 * time.Millisecond }}
	if err := sendEmail.Handle(ws, func(ctx context.Context, _ *acidic.Job, a emailArgs) error {
		return g.deliver(ctx, "email", a.Order)
	}, fast); err != nil {
		return err
	}
	return sendSMS.Handle(ws, func(ctx context.Context, job *acidic.Job, a smsArgs) error {
		if g.smsFailures < 0 || job.Attempt <= g.smsFailures {
			return fmt.Errorf("sms gateway unavailable (attempt %d)", job.Attempt)
		}
		return g.deliver(ctx, "sms", a.Order)
	}, fast)
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
	Schema      string
	Order       string
	SMSFailures int
	Timeout     time.Duration
	Logger      *slog.Logger
}

// report is what run found once the order's run finished.
type report struct {
	Store      string // the store, when runOrder opened it
	RunID      uuid.UUID
	State      acidic.RunState
	Error      string
	Steps      []acidic.Step
	Jobs       []*acidic.AwaitedJob
	Deliveries int // rows in deliveries for the order
	Notified   int // rows in notified for the order
}

func main() {
	cfg := config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	flag.StringVar(&cfg.Schema, "schema", os.Getenv("ACIDIC_SCHEMA"), "PostgreSQL schema for Acidic's and the example's tables (default $ACIDIC_SCHEMA, else acidic, as for the acidic command)")
	flag.StringVar(&cfg.Order, "order", "order-1", "order id (one run per order)")
	flag.IntVar(&cfg.SMSFailures, "sms-failures", 2, "attempts of the SMS that fail before it goes out (-1: all; the SMS has 5)")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up if the run has not finished by then")
	flag.Parse()
	// The store: DATABASE_URL (PostgreSQL, or sqlite:PATH), else the
	// SQLite file at ACIDIC_DB, else ./acidic.db; the acidic command
	// chooses the same way.
	src, err := storeurl.FromEnv(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(2)
	}
	cfg.Store = src

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	rep, err := runOrder(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if rep.State != acidic.RunSucceeded {
		os.Exit(1)
	}
}

// runOrder enqueues the order's run (or finds it), works the three queues
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
		`CREATE TABLE IF NOT EXISTS deliveries (channel TEXT, order_id TEXT, PRIMARY KEY (channel, order_id))`,
		`CREATE TABLE IF NOT EXISTS notified (order_id TEXT, channels TEXT)`,
	} {
		if _, err := db.Exec(ctx, ddl); err != nil {
			return rep, fmt.Errorf("create tables: %w", err)
		}
	}
	gw := &gateways{db: db, smsFailures: cfg.SMSFailures}
	ws := queue.NewWorkers()
	if err := gw.register(ws); err != nil {
		return rep, err
	}
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: cfg.Logger, Queue: queue.Config{
		Workers: ws,
		Queues: map[string]queue.QueueConfig{
			ordersQueue: {MaxWorkers: 2}, mailersQueue: {MaxWorkers: 2}, smsQueue: {MaxWorkers: 2},
		},
	}})
	if err != nil {
		return rep, err
	}
	wf := orderConfirmed()
	if err := eng.Register(wf); err != nil {
		return rep, err
	}
	res, err := wf.Enqueue(ctx, eng, orderArgs{Order: cfg.Order, Email: "ada@example.com", Phone: "+15550100"}, workflow.EnqueueOptions{})
	if err != nil {
		return rep, err
	}
	if err := eng.Start(ctx); err != nil {
		return rep, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = eng.Stop(stopCtx)
	}()
	r, err := wf.Wait(ctx, eng, res.Run.ID)
	if err != nil {
		return rep, err
	}
	rep.RunID, rep.State, rep.Error, rep.Steps = r.ID, r.State, r.Error, r.Steps
	if rep.Jobs, err = eng.AwaitedJobs(ctx, r.ID); err != nil {
		return rep, err
	}
	for sql, n := range map[string]*int{
		`SELECT count(*) FROM deliveries WHERE order_id = $1`: &rep.Deliveries,
		`SELECT count(*) FROM notified WHERE order_id = $1`:   &rep.Notified,
	} {
		if err := db.QueryRow(ctx, sql, cfg.Order).Scan(n); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (r report) print(w io.Writer) {
	if r.Store != "" {
		fmt.Fprintf(w, "store: %s\n", r.Store)
	}
	fmt.Fprintf(w, "run %s %s", r.RunID, r.State)
	if r.Error != "" {
		fmt.Fprintf(w, ": %s", r.Error)
	}
	fmt.Fprintln(w)
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  step %-14s %-10s executions=%d\n", s.Name, s.State, s.Executions)
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(w, "  awaited job %d %-10s on %-8s %s after %d failed attempts\n", j.JobID, j.Kind, j.Queue, j.State, len(j.Errors))
	}
	fmt.Fprintf(w, "deliveries: %d, marked notified: %d\n", r.Deliveries, r.Notified)
}
