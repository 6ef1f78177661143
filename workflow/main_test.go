package workflow_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// TestMain doubles as a workflow worker process: tests that need to SIGKILL
// a worker start this test binary again with ACIDIC_TEST_WORKFLOW_WORKER set.
func TestMain(m *testing.M) {
	if os.Getenv("ACIDIC_TEST_WORKFLOW_WORKER") != "" {
		os.Exit(workflowWorkerProcess())
	}
	os.Exit(m.Run())
}

type crashyArgs struct {
	Order string `json:"order"`
}

type crashyState struct {
	Done []string `json:"done"`
}

// crashyWorkflow has three steps that each record their effect in the step's
// transaction. When hangAt names a step, that step first records its effect
// (uncommitted), then a marker row outside its transaction, and then blocks
// forever: only SIGKILL ends it.
func crashyWorkflow(drv *postgres.Driver, hangAt string) *workflow.Workflow[crashyArgs, crashyState] {
	step := func(name string) steps.Step[crashyArgs, crashyState] {
		return steps.Do(name, func(ctx context.Context, sc *steps.Context[crashyArgs, crashyState]) error {
			if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), name, 0); err != nil {
				return err
			}
			sc.Logger().Info("effect recorded", "pid", os.Getpid())
			sc.State.Done = append(sc.State.Done, name)
			if name == hangAt {
				if _, err := drv.Pool().Exec(context.WithoutCancel(ctx), "INSERT INTO "+table(drv, "markers")+" (run_id, step, pid) VALUES ($1, $2, $3)",
					sc.RunID(), name, os.Getpid()); err != nil {
					return err
				}
				select {} // ignore even cancellation
			}
			return nil
		})
	}
	return workflow.Define("crashy", workflow.Options{
		MaxAttempts: 5,
		Backoff:     func(int, error) time.Duration { return 5 * time.Millisecond },
	}, step("step1"), step("step2"), step("step3"))
}

// iteratingWorkflow has one for-each step over 1,000 items, each recording
// its effect in the item's own transaction, and a last step. pace slows each
// item down, so a test can kill a worker mid-iteration; seen, when set, is
// called with every item the step's code starts.
func iteratingWorkflow(drv storage.Driver, pace time.Duration, seen func(item int)) *workflow.Workflow[crashyArgs, crashyState] {
	return workflow.Define("iterating", workflow.Options{
		MaxAttempts: 5,
		Backoff:     func(int, error) time.Duration { return 5 * time.Millisecond },
	},
		steps.ForEach("items",
			func(*steps.Context[crashyArgs, crashyState]) ([]int, error) {
				items := make([]int, 1000)
				for i := range items {
					items[i] = i
				}
				return items, nil
			},
			func(ctx context.Context, sc *steps.Context[crashyArgs, crashyState], item int) error {
				if seen != nil {
					seen(item)
				}
				time.Sleep(pace)
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "items", item)
			}, steps.ForEachOptions{}),
		steps.Do("done", func(ctx context.Context, sc *steps.Context[crashyArgs, crashyState]) error {
			return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "done", 0)
		}))
}

// workflowWorkerProcess works queue "default" of schema ACIDIC_TEST_SCHEMA
// with the crashy and iterating workflows until SIGTERM (or SIGKILL).
func workflowWorkerProcess() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pcfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The test finds this process's sessions by it (see waitSessionsGone).
	pcfg.ConnConfig.RuntimeParams["application_name"] = os.Getenv("ACIDIC_TEST_APP_NAME")
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	drv := postgres.New(pool, postgres.Options{Schema: os.Getenv("ACIDIC_TEST_SCHEMA")})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := workflow.NewEngine(drv, workflow.Config{
		Queue: queue.Config{
			Queues:            map[string]queue.QueueConfig{"default": {MaxWorkers: 1}},
			PollInterval:      20 * time.Millisecond,
			HeartbeatInterval: 50 * time.Millisecond,
			RescueAfter:       time.Hour,              // only the test's engine rescues
			LeaderLease:       300 * time.Millisecond, // a killed worker's lead passes on soon
		},
		Logger: logger,
	})
	if err == nil {
		err = e.Register(crashyWorkflow(drv, os.Getenv("ACIDIC_TEST_HANG_AT")), iteratingWorkflow(drv, 2*time.Millisecond, nil))
	}
	if err == nil {
		err = e.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.Stop(stopCtx)
	return 0
}

// startWorkflowWorker runs this test binary as a workflow worker on schema.
// The worker's database sessions carry workerAppName(schema) as their
// application_name.
func startWorkflowWorker(t *testing.T, schema, hangAt string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"ACIDIC_TEST_WORKFLOW_WORKER=1",
		"ACIDIC_TEST_SCHEMA="+schema,
		"ACIDIC_TEST_APP_NAME="+workerAppName(schema),
		"ACIDIC_TEST_HANG_AT="+hangAt,
		"DATABASE_URL="+testdb.URL(),
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// workerAppName is the application_name of the sessions of the worker
// process started on schema (schema names are unique per test, and short
// enough for PostgreSQL's 63 bytes).
func workerAppName(schema string) string { return "w_" + schema }

// workerSessions counts the database sessions of the worker process started
// on the driver's schema.
func workerSessions(t *testing.T, drv *postgres.Driver) int {
	t.Helper()
	var n int
	err := drv.Pool().QueryRow(context.Background(),
		"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
		workerAppName(drv.Schema())).Scan(&n)
	if err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	return n
}

// waitSessionsGone waits until the killed worker process started on the
// driver's schema has no session left in the database. SIGKILL ends the
// process at once, but its backends end only when they notice: one may still
// be executing a COMMIT the worker sent just before it died.
func waitSessionsGone(t *testing.T, drv *postgres.Driver) {
	t.Helper()
	waitFor(t, 30*time.Second, "the killed worker's database sessions to end", func() (bool, string) {
		n := workerSessions(t, drv)
		return n == 0, fmt.Sprintf("%d sessions with application_name %s", n, workerAppName(drv.Schema()))
	})
}
