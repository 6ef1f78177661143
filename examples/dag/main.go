// Command dag runs the licence webhook workflow of "Using Oban to license
// Oban" on Acidic: when a subscription is created, a legacy hex licence and
// a self-hosting licence are made in parallel, then the welcome email and
// the notification to the team go out, both only after both licences exist.
// The webhook may be delivered twice: the workflow's key is the event id,
// so a redelivery inserts no second workflow. See README.md.
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

// subscription is what the webhook carries, and every job's arguments.
type subscription struct {
	Event    string `json:"event"` // the webhook's event id: one workflow per event
	Customer string `json:"customer"`
	Email    string `json:"email"`
}

// The four jobs of the workflow, one kind each.
var (
	hexKind     = queue.NewKind[subscription]("hex_licence")
	licenceKind = queue.NewKind[subscription]("self_hosted_licence")
	welcomeKind = queue.NewKind[subscription]("welcome_email")
	notifyKind  = queue.NewKind[subscription]("notify_team")
)

type licenceRun struct {
	*steps.Context[subscription, struct{}]
}

// licences are the two jobs that run first, in parallel.
func (r licenceRun) licences(context.Context) ([]queue.EnqueueParams, error) {
	return []queue.EnqueueParams{
		hexKind.Params(r.Args, queue.EnqueueOptions{Queue: "licences"}),
		licenceKind.Params(r.Args, queue.EnqueueOptions{Queue: "licences"}),
	}, nil
}

// announcements are the two jobs that run after both licences, in parallel.
func (r licenceRun) announcements(context.Context) ([]queue.EnqueueParams, error) {
	return []queue.EnqueueParams{
		welcomeKind.Params(r.Args, queue.EnqueueOptions{Queue: "mailers"}),
		notifyKind.Params(r.Args, queue.EnqueueOptions{}),
	}, nil
}

// licenceWorkflow: hex and licence in parallel; welcome and notify after
// both. Each await step is one level of the graph.
func licenceWorkflow() *workflow.Workflow[subscription, struct{}] {
	on := steps.Bind(func(sc *steps.Context[subscription, struct{}]) licenceRun { return licenceRun{sc} })
	return workflow.Define("subscription_created",
		workflow.Options{Key: run.By(func(s subscription) (string, error) { return s.Event, nil })},
		on.AwaitJobsFunc("licences", licenceRun.licences, steps.AwaitOptions{}),
		on.AwaitJobsFunc("announce", licenceRun.announcements, steps.AwaitOptions{}),
		on.Do("done", func(r licenceRun, ctx context.Context) error { return r.SetResult("licensed " + r.Args.Customer) }),
	)
}

// workers make the licences and send the messages. Each writes what it did
// to the example's tables, idempotently (a retried job does it once), and
// logs its work in order (events), which shows the graph's order.
type workers struct {
	pool   *pgxpool.Pool
	schema string
}

func (w *workers) sql(s string) string { return inSchema(w.schema, s) }

func (w *workers) register(ws *queue.Workers) error {
	grant := func(kind string) func(ctx context.Context, _ *acidic.Job, s subscription) error {
		return func(ctx context.Context, _ *acidic.Job, s subscription) error {
			_, err := w.pool.Exec(ctx, w.sql(`
				WITH made AS (INSERT INTO {schema}.licences (customer, kind, key) VALUES ($1, $2, gen_random_uuid()::text)
				              ON CONFLICT DO NOTHING RETURNING 1)
				INSERT INTO {schema}.events (what, customer) SELECT $2, $1 FROM made`), s.Customer, kind)
			return err
		}
	}
	send := func(what string) func(ctx context.Context, _ *acidic.Job, s subscription) error {
		return func(ctx context.Context, _ *acidic.Job, s subscription) error {
			var licences int
			if err := w.pool.QueryRow(ctx, w.sql(`SELECT count(*) FROM {schema}.licences WHERE customer = $1`), s.Customer).Scan(&licences); err != nil {
				return err
			}
			if licences != 2 {
				return fmt.Errorf("%s for %s: %d licences of 2", what, s.Customer, licences)
			}
			_, err := w.pool.Exec(ctx, w.sql(`INSERT INTO {schema}.events (what, customer) SELECT $1, $2
				WHERE NOT EXISTS (SELECT 1 FROM {schema}.events WHERE what = $1 AND customer = $2)`), what, s.Customer)
			return err
		}
	}
	for _, h := range []error{
		hexKind.Handle(ws, grant("hex"), queue.KindOptions{}),
		licenceKind.Handle(ws, grant("self_hosted"), queue.KindOptions{}),
		welcomeKind.Handle(ws, send("welcome"), queue.KindOptions{}),
		notifyKind.Handle(ws, send("notify"), queue.KindOptions{}),
	} {
		if h != nil {
			return h
		}
	}
	return nil
}

// config is what one invocation does.
type config struct {
	URL        string
	Pool       *pgxpool.Pool // used instead of URL when set (tests)
	Schema     string
	Event      string
	Customer   string
	Deliveries int // how many times the webhook is delivered
	Timeout    time.Duration
	Logger     *slog.Logger
}

// report is what handleWebhook found once the workflow finished.
type report struct {
	RunIDs []uuid.UUID // the run each delivery found or made
	State  acidic.RunState
	Error  string
	Result string
	Events []string // what the workers did, in order
}

func main() {
	cfg := config{URL: os.Getenv("DATABASE_URL"), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if cfg.URL == "" {
		cfg.URL = defaultURL
	}
	flag.StringVar(&cfg.Schema, "schema", "acidic_dag", "schema for Acidic's and the example's tables")
	flag.StringVar(&cfg.Event, "event", "evt_1", "the webhook's event id")
	flag.StringVar(&cfg.Customer, "customer", "cus_1", "the subscribing customer")
	flag.IntVar(&cfg.Deliveries, "deliveries", 2, "how many times the webhook is delivered")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up if the workflow has not finished by then")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	rep, err := handleWebhook(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dag:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
}

// handleWebhook delivers the webhook cfg.Deliveries times (each inserts the
// workflow, or finds it by the event id), works the queues until the
// workflow finishes, and reports.
func handleWebhook(ctx context.Context, cfg config) (rep report, err error) {
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
		CREATE TABLE IF NOT EXISTS {schema}.licences (customer text, kind text, key text, PRIMARY KEY (customer, kind));
		CREATE TABLE IF NOT EXISTS {schema}.events (seq bigserial PRIMARY KEY, what text, customer text)`)); err != nil {
		return rep, err
	}
	ws := queue.NewWorkers()
	if err := (&workers{pool: pool, schema: cfg.Schema}).register(ws); err != nil {
		return rep, err
	}
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: cfg.Logger, Queue: queue.Config{
		Workers: ws,
		Queues:  map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 2}, "licences": {MaxWorkers: 2}, "mailers": {MaxWorkers: 1}},
	}})
	if err != nil {
		return rep, err
	}
	wf := licenceWorkflow()
	if err := eng.Register(wf); err != nil {
		return rep, err
	}
	args := subscription{Event: cfg.Event, Customer: cfg.Customer, Email: cfg.Customer + "@example.com"}
	for range max(cfg.Deliveries, 1) {
		res, err := wf.Enqueue(ctx, eng, args, workflow.EnqueueOptions{})
		if err != nil {
			return rep, err
		}
		rep.RunIDs = append(rep.RunIDs, res.Run.ID)
	}
	if err := eng.Start(ctx); err != nil {
		return rep, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = eng.Stop(stopCtx)
	}()
	r, err := wf.Wait(ctx, eng, rep.RunIDs[0])
	if err != nil {
		return rep, err
	}
	rep.State, rep.Error = r.State, r.Error
	if r.State == acidic.RunSucceeded {
		if rep.Result, err = acidic.DecodeResult[string](r.Run); err != nil {
			return rep, err
		}
	}
	rows, err := pool.Query(ctx, inSchema(cfg.Schema, `SELECT what FROM {schema}.events WHERE customer = $1 ORDER BY seq`), cfg.Customer)
	if err != nil {
		return rep, err
	}
	rep.Events, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return rep, err
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "%d deliveries, runs %v\n", len(r.RunIDs), r.RunIDs)
	fmt.Fprintf(w, "workflow %s %s%s\n", r.State, r.Error, r.Result)
	fmt.Fprintf(w, "in order: %s\n", strings.Join(r.Events, ", "))
}

// inSchema puts the quoted schema name into a statement.
func inSchema(schema, sql string) string {
	return strings.ReplaceAll(sql, "{schema}", pgx.Identifier{schema}.Sanitize())
}
