// Command fanout shows a workflow step that awaits plain queue jobs on two
// queues: once an order is confirmed, an email (queue "mailers") and an SMS
// (queue "sms") go out in parallel, and the order is marked notified once
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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

const defaultURL = "postgres://postgres@127.0.0.1:5432/acidic_test?sslmode=disable"

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

// orderRun is what each step works with: the typed step context, and the
// schema of the example's tables.
type orderRun struct {
	*steps.Context[orderArgs, orderState]
	schema string
}

// notifications returns the jobs step "notify" awaits, one per queue.
func (r orderRun) notifications(ctx context.Context) ([]queue.EnqueueParams, error) {
	return []queue.EnqueueParams{
		sendEmail.Params(emailArgs{Order: r.Args.Order, To: r.Args.Email}, queue.EnqueueOptions{Queue: "mailers"}),
		sendSMS.Params(smsArgs{Order: r.Args.Order, Phone: r.Args.Phone}, queue.EnqueueOptions{Queue: "sms", MaxAttempts: 5}),
	}, nil
}

// markNotified runs once both jobs have ended (a job that did not complete
// would have failed the run before it): it reads what they did and marks
// the order notified, in the step's transaction.
func (r orderRun) markNotified(ctx context.Context) error {
	jobs, err := r.ChildJobs(ctx, "notify")
	if err != nil {
		return err
	}
	for _, j := range jobs {
		r.State.Channels = append(r.State.Channels, fmt.Sprintf("%s (%d failed attempts)", j.Kind, len(j.Errors)))
	}
	_, err = postgres.PgxTx(r.Tx()).Exec(ctx, inSchema(r.schema,
		`INSERT INTO {schema}.notified (order_id, channels) VALUES ($1, $2)`), r.Args.Order, strings.Join(r.State.Channels, ", "))
	return err
}

// orderConfirmed is the workflow: two steps, the first awaiting two jobs.
func orderConfirmed(schema string) *workflow.Workflow[orderArgs, orderState] {
	on := steps.Bind(func(sc *steps.Context[orderArgs, orderState]) orderRun { return orderRun{sc, schema} })
	return workflow.Define("order_confirmed",
		workflow.Options{Key: run.By(func(a orderArgs) (string, error) { return a.Order, nil })},
		on.AwaitJobsFunc("notify", orderRun.notifications, steps.AwaitOptions{}),
		on.Do("mark_notified", orderRun.markNotified),
	)
}

// gateways are the fake email and SMS providers: each delivery is a row
// (idempotent: a retried job delivers once); the SMS gateway fails the
// first smsFailures attempts of each message (-1: every attempt).
type gateways struct {
	pool        *pgxpool.Pool
	schema      string
	smsFailures int
}

func (g *gateways) deliver(ctx context.Context, channel, order string) error {
	_, err := g.pool.Exec(ctx, inSchema(g.schema,
		`INSERT INTO {schema}.deliveries (channel, order_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`), channel, order)
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
	URL         string
	Pool        *pgxpool.Pool // used instead of URL when set (tests)
	Schema      string
	Order       string
	SMSFailures int
	Timeout     time.Duration
	Logger      *slog.Logger
}

// report is what run found once the order's run finished.
type report struct {
	RunID      uuid.UUID
	State      acidic.RunState
	Error      string
	Steps      []acidic.Step
	Jobs       []*acidic.AwaitedJob
	Deliveries int // rows in deliveries for the order
	Notified   int // rows in notified for the order
}

func main() {
	cfg := config{URL: os.Getenv("DATABASE_URL"), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if cfg.URL == "" {
		cfg.URL = defaultURL
	}
	flag.StringVar(&cfg.Schema, "schema", "acidic_fanout", "schema for Acidic's and the example's tables")
	flag.StringVar(&cfg.Order, "order", "order-1", "order id (one run per order)")
	flag.IntVar(&cfg.SMSFailures, "sms-failures", 2, "attempts of the SMS that fail before it goes out (-1: all; the SMS has 5)")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up if the run has not finished by then")
	flag.Parse()
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
	pool := cfg.Pool
	if pool == nil {
		if pool, err = pgxpool.New(ctx, cfg.URL); err != nil {
			return rep, err
		}
		defer pool.Close()
	}
	drv := postgres.New(pool, postgres.Options{Schema: cfg.Schema})
	if _, err := drv.Migrator().Up(ctx); err != nil {
		return rep, err
	}
	if _, err := pool.Exec(ctx, inSchema(cfg.Schema, `
		CREATE TABLE IF NOT EXISTS {schema}.deliveries (channel text, order_id text, PRIMARY KEY (channel, order_id));
		CREATE TABLE IF NOT EXISTS {schema}.notified (order_id text, channels text)`)); err != nil {
		return rep, err
	}
	gw := &gateways{pool: pool, schema: cfg.Schema, smsFailures: cfg.SMSFailures}
	ws := queue.NewWorkers()
	if err := gw.register(ws); err != nil {
		return rep, err
	}
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: cfg.Logger, Queue: queue.Config{
		Workers: ws,
		Queues: map[string]queue.QueueConfig{
			queue.DefaultQueue: {MaxWorkers: 2}, "mailers": {MaxWorkers: 2}, "sms": {MaxWorkers: 2},
		},
	}})
	if err != nil {
		return rep, err
	}
	wf := orderConfirmed(cfg.Schema)
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
		`SELECT count(*) FROM {schema}.deliveries WHERE order_id = $1`: &rep.Deliveries,
		`SELECT count(*) FROM {schema}.notified WHERE order_id = $1`:   &rep.Notified,
	} {
		if err := pool.QueryRow(ctx, inSchema(cfg.Schema, sql), cfg.Order).Scan(n); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (r report) print(w io.Writer) {
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

// inSchema puts the quoted schema name into a statement.
func inSchema(schema, sql string) string {
	return strings.ReplaceAll(sql, "{schema}", pgx.Identifier{schema}.Sanitize())
}
