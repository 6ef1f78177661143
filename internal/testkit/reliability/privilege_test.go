package reliability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/outbox"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// operationsSQL returns the SQL blocks of docs/operations.md's "Least
// privilege" section, in order, with its example names replaced: acidic_owner
// and acidic_app by the given roles, the schema acidic by schema (quoted).
func operationsSQL(t *testing.T, owner, app, schema string) []string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/operations.md")
	if err != nil {
		t.Fatalf("read docs/operations.md: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Least privilege\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Least privilege" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)\\s*```").FindAllStringSubmatch(section, -1) {
		sql := m[1]
		sql = regexp.MustCompile(`\bacidic_owner\b`).ReplaceAllLiteralString(sql, owner)
		sql = regexp.MustCompile(`\bacidic_app\b`).ReplaceAllLiteralString(sql, app)
		sql = regexp.MustCompile(`\bacidic\b`).ReplaceAllLiteralString(sql, pgx.Identifier{schema}.Sanitize())
		blocks = append(blocks, sql)
	}
	return blocks
}

// deniedLog records log lines that mention a missing privilege.
type deniedLog struct {
	mu    sync.Mutex
	lines []string
}

func (d *deniedLog) Enabled(context.Context, slog.Level) bool { return true }
func (d *deniedLog) WithAttrs([]slog.Attr) slog.Handler       { return d }
func (d *deniedLog) WithGroup(string) slog.Handler            { return d }
func (d *deniedLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if s := b.String(); strings.Contains(s, "42501") || strings.Contains(s, "permission denied") {
		d.mu.Lock()
		d.lines = append(d.lines, s)
		d.mu.Unlock()
	}
	return nil
}

func (d *deniedLog) denied() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

type privArgs struct {
	Order string `json:"order"`
}

// TestLeastPrivilegeRole: the grants docs/operations.md documents, run as
// written there, are enough for an application role to run everything:
// an owner without CREATE on the database migrates a schema an administrator
// made for it (and reverts and re-applies migrations after the grants, which
// the default privileges must cover); the database's default EXECUTE for
// PUBLIC is revoked; the application role then calls Migrator().Up, runs
// workflows whose steps enqueue jobs, stage outbox messages and await child
// runs to success, retries a failing job, enqueues a unique job, cancels a
// run, relays (with a failure) and prunes the outbox, prunes jobs, deletes
// a run with its step log (Engine.DeleteRun) and prunes runs, runs periodic
// passes. No step of it may hit a missing privilege.
func TestLeastPrivilegeRole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	owner := testdb.Role(t, "NOCREATEDB")
	app := testdb.Role(t, "NOCREATEDB")
	schema := testdb.SchemaName(t)
	admin := testdb.Pool(t, testdb.Options{MaxConns: 2})
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	sql := operationsSQL(t, owner, app, schema)
	if len(sql) != 2 {
		t.Fatalf("docs/operations.md's Least privilege section has %d SQL blocks, want 2 (the administrator's, the grants)", len(sql))
	}
	var canCreate bool
	if err := admin.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CREATE')", owner).Scan(&canCreate); err != nil || canCreate {
		t.Fatalf("the owner may create schemas (%v); the test needs one that may not", err)
	}
	// A hardened database: functions the owner creates are not executable by
	// PUBLIC.
	if _, err := admin.Exec(ctx, "ALTER DEFAULT PRIVILEGES FOR ROLE "+owner+" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, sql[0]); err != nil {
		t.Fatalf("the administrator's SQL: %v\n%s", err, sql[0])
	}

	ownerPool := testdb.Pool(t, testdb.Options{User: owner, MaxConns: 2})
	m := migrations.New(postgres.New(ownerPool, postgres.Options{Schema: schema}))
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("the owner's Up: %v", err)
	}
	if _, err := ownerPool.Exec(ctx, sql[1]); err != nil {
		t.Fatalf("the grants: %v\n%s", err, sql[1])
	}
	// Tables and functions that later migrations create (the outbox,
	// lease_lost): revert to version 1 and apply the rest again.
	if _, err := m.Down(ctx, 1); err != nil {
		t.Fatalf("the owner's Down(1): %v", err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("the owner's second Up: %v", err)
	}
	var publicExec bool
	if err := admin.QueryRow(ctx, "SELECT has_function_privilege('public', $1, 'EXECUTE')",
		pgx.Identifier{schema, "lease_lost"}.Sanitize()+"(uuid)").Scan(&publicExec); err != nil || publicExec {
		t.Fatalf("PUBLIC may execute lease_lost (%v); the test needs a database that revoked it", err)
	}

	appPool := testdb.Pool(t, testdb.Options{User: app, MaxConns: 8})
	drv := postgres.New(appPool, postgres.Options{Schema: schema})
	if applied, err := drv.Migrator().Up(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("the application's Up with nothing pending: %v, %v", applied, err)
	}

	log := &deniedLog{}
	logger := slog.New(log)
	var receiptTries atomic.Int32
	ws := queue.NewWorkers()
	if err := ws.Handle("receipt", func(context.Context, *acidic.Job) error {
		if receiptTries.Add(1) == 1 {
			return errors.New("mailer unavailable")
		}
		return nil
	}, queue.KindOptions{Backoff: func(int, error) time.Duration { return 10 * time.Millisecond }}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Handle("audit", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	noop := func(name string) steps.Step[privArgs, struct{}] {
		return steps.Do(name, func(context.Context, *steps.Context[privArgs, struct{}]) error { return nil })
	}
	order := workflow.Define("order", workflow.Options{MaxAttempts: 3},
		noop("charge"),
		steps.Do("stage", func(ctx context.Context, sc *steps.Context[privArgs, struct{}]) error {
			if _, err := sc.Enqueue(ctx, "receipt", sc.Args, queue.EnqueueOptions{}); err != nil {
				return err
			}
			return sc.Publish(ctx, "orders", sc.Args.Order, sc.Args)
		}),
		steps.AwaitRuns[privArgs, struct{}]("children", steps.AwaitOptions{},
			steps.RunRequest{Workflow: "child", Args: privArgs{Order: "c1"}},
			steps.RunRequest{Workflow: "child", Args: privArgs{Order: "c2"}}),
		noop("done"))
	child := workflow.Define("child", workflow.Options{}, noop("only"))
	slow := workflow.Define("slow", workflow.Options{}, noop("only"))
	e, err := workflow.NewEngine(drv, workflow.Config{
		Queue: queue.Config{
			Workers:             ws,
			Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 4}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   20 * time.Millisecond,
			RescueAfter:         time.Hour,
			MaintenanceInterval: 50 * time.Millisecond,
		},
		LockedRetry: 20 * time.Millisecond,
		Logger:      logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(order, child, slow); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(stopCtx)
	}()

	res, err := e.Enqueue(ctx, "order", privArgs{Order: "o1"}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatalf("Enqueue as the application: %v", err)
	}
	later, err := e.Enqueue(ctx, "slow", privArgs{Order: "o2"}, workflow.EnqueueOptions{ScheduleIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	unique := &queue.UniqueOptions{Fields: []queue.UniqueField{queue.UniqueByKind}}
	for range 2 {
		if _, err := e.Queue().Enqueue(ctx, "audit", nil, queue.EnqueueOptions{Unique: unique, ScheduleIn: time.Hour}); err != nil {
			t.Fatalf("unique enqueue: %v", err)
		}
	}

	waitRunState(t, e, res.Run.ID, acidic.RunSucceeded, log)
	r, err := e.Get(ctx, res.Run.ID)
	if err != nil || len(r.Steps) != 4 {
		t.Fatalf("run %+v, %v", r, err)
	}
	children, err := e.List(ctx, acidic.RunFilter{ParentRunID: res.Run.ID})
	if err != nil || len(children) != 2 || children[0].State != acidic.RunSucceeded || children[1].State != acidic.RunSucceeded {
		t.Fatalf("children: %v, %v", children, err)
	}
	receipt := waitJobState(t, drv, "receipt", acidic.JobCompleted, log)
	if receipt.Attempt != 2 || len(receipt.Errors) != 1 {
		t.Errorf("receipt job: attempt %d, errors %+v; want a failure then a success", receipt.Attempt, receipt.Errors)
	}
	if c, err := e.Cancel(ctx, later.Run.ID); err != nil || c.State != acidic.RunCancelled {
		t.Fatalf("Cancel as the application: %v, %v", c, err)
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{RunID: later.Run.ID}); err != nil || len(jobs) != 1 || jobs[0].State != acidic.JobCancelled {
		t.Fatalf("the cancelled run's job: %v, %v", jobs, err)
	}
	// Queue controls: the engine registered and read its queue; an
	// operator with the application's role pauses, scales and resumes it.
	if _, err := e.PauseQueue(ctx, queue.DefaultQueue); err != nil {
		t.Fatalf("PauseQueue as the application: %v", err)
	}
	if _, err := e.ScaleQueue(ctx, queue.DefaultQueue, 3); err != nil {
		t.Fatalf("ScaleQueue as the application: %v", err)
	}
	if ctl, err := e.ResumeQueue(ctx, queue.DefaultQueue); err != nil || ctl.Paused || ctl.MaxWorkers != 3 {
		t.Fatalf("ResumeQueue as the application: %+v, %v", ctl, err)
	}

	// The outbox: one failed delivery, then delivered, then pruned.
	var publishes atomic.Int32
	relay, err := outbox.New(drv, outbox.Config{
		Publisher: outbox.PublisherFunc(func(context.Context, *acidic.OutboxMessage) error {
			if publishes.Add(1) == 1 {
				return errors.New("broker away")
			}
			return nil
		}),
		Backoff:   func(int, error) time.Duration { return time.Millisecond },
		Retention: time.Nanosecond,
		Logger:    logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for i := 0; i < 200 && delivered == 0; i++ {
		res, err := relay.RunOnce(ctx)
		if err != nil {
			t.Fatalf("relay as the application: %v", err)
		}
		delivered = res.Delivered
		time.Sleep(5 * time.Millisecond)
	}
	if delivered != 1 || publishes.Load() != 2 {
		t.Fatalf("outbox: delivered %d after %d publishes", delivered, publishes.Load())
	}
	if n, err := relay.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("outbox prune: %d, %v", n, err)
	}

	// Pruning jobs, and an operator deleting a finished run with its steps.
	if n, err := drv.JobPrune(ctx, storage.JobPruneParams{Retention: 0, Limit: 1000}); err != nil || n == 0 {
		t.Fatalf("JobPrune as the application: %d, %v", n, err)
	}
	if _, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: time.Hour, Limit: 10}); err != nil {
		t.Fatalf("JobRescue: %v", err)
	}
	// A periodic job: registered by a first pass, its first period enqueued
	// by a second.
	now := time.Date(2030, 1, 1, 0, 0, 30, 0, time.UTC)
	pc, err := queue.New(drv, queue.Config{Now: func() time.Time { return now }, Logger: logger,
		Periodic: []queue.PeriodicJob{{Name: "tick", Spec: "* * * * *", Kind: "tick"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		now = now.Add(time.Duration(i) * time.Minute)
		if res, err := pc.EnqueuePeriodic(ctx); err != nil || len(res.Enqueued) != i {
			t.Fatalf("periodic pass %d as the application: %+v, %v", i+1, res, err)
		}
	}
	if err := e.DeleteRun(ctx, res.Run.ID); err != nil {
		t.Fatalf("delete a run as the application: %v", err)
	}
	if steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: res.Run.ID}); err != nil || len(steps) != 0 {
		t.Fatalf("the deleted run's step log: %v, %v", steps, err)
	}
	// Pruning runs: the deleted run's children, detached, and the cancelled
	// run.
	pruner, err := workflow.NewEngine(drv, workflow.Config{Logger: logger,
		Retention: workflow.Retention{Succeeded: time.Nanosecond, Cancelled: time.Nanosecond}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := pruner.PruneRuns(ctx); err != nil || n != 3 {
		t.Fatalf("PruneRuns as the application: %d, %v; want the 2 children and the cancelled run", n, err)
	}
	if denied := log.denied(); len(denied) > 0 {
		t.Errorf("the application hit missing privileges:\n%s", strings.Join(denied, "\n"))
	}
}

func waitRunState(t *testing.T, e *workflow.Engine, id uuid.UUID, want acidic.RunState, log *deniedLog) {
	t.Helper()
	ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		r, err := e.Get(context.Background(), id)
		if err != nil {
			return false, err.Error()
		}
		return r.State == want, fmt.Sprintf("%s at %s (%s)", r.State, r.RecoveryPoint, r.Error)
	})
	if !ok {
		t.Fatalf("run %s: %s, want %s; denied: %v", id, saw, want, log.denied())
	}
}

func waitJobState(t *testing.T, drv storage.Driver, kind string, want acidic.JobState, log *deniedLog) *acidic.Job {
	t.Helper()
	var job *acidic.Job
	ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		jobs, err := drv.JobList(context.Background(), acidic.JobFilter{Kind: kind})
		if err != nil || len(jobs) != 1 {
			return false, fmt.Sprint(jobs, err)
		}
		job = jobs[0]
		return job.State == want, string(job.State)
	})
	if !ok {
		t.Fatalf("job %s: %s, want %s; denied: %v", kind, saw, want, log.denied())
	}
	return job
}
