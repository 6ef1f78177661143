package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// TestNamesAreData: a schema name, queue names and kind (workflow) names
// made of SQL (quotes, $$, semicolons, comments) are data, never SQL. The
// schema is migrated and worked (listener included) under its exact name and
// nothing lands anywhere else; jobs and runs keep their names as given; a
// canary table that every name tries to drop survives.
func TestNamesAreData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := testdb.Pool(t, testdb.Options{MaxConns: 2})
	canary := "c_" + randHex(4)
	drop := "DROP TABLE " + canary + ".t"
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+canary+"; CREATE TABLE "+canary+".t (v int); INSERT INTO "+canary+".t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdb.DropSchema(t, canary) })
	schema := `e` + randHex(2) + `"; ` + drop + `; --$$'`
	t.Cleanup(func() { testdb.DropSchema(t, schema) })
	kind := `k'); ` + drop + `; --"`
	queueName := `q"; ` + drop + `; $$ --'`
	wfName := `w'||(SELECT 1); ` + drop + `; --`

	drv := postgres.New(testdb.Pool(t, testdb.Options{MaxConns: 6}), postgres.Options{Schema: schema})
	if _, err := drv.Migrator().Up(ctx); err != nil {
		t.Fatalf("migrate schema %q: %v", schema, err)
	}
	ws := queue.NewWorkers()
	if err := ws.Handle(kind, func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	wf := workflow.Define(wfName, workflow.Options{Queue: queueName},
		steps.Do(`s'; `+drop+`; --`, func(ctx context.Context, sc *steps.Context[map[string]string, struct{}]) error {
			_, err := sc.Enqueue(ctx, kind, sc.Args, queue.EnqueueOptions{Queue: queueName})
			return err
		}))
	logger, _ := newQuietLogger(nil)
	e, err := workflow.NewEngine(drv, workflow.Config{
		Queue: queue.Config{
			Workers:           ws,
			Queues:            map[string]queue.QueueConfig{queueName: {MaxWorkers: 2}},
			PollInterval:      20 * time.Millisecond,
			HeartbeatInterval: 20 * time.Millisecond,
		},
		LockedRetry: 20 * time.Millisecond,
		Logger:      logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(wf); err != nil {
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
	// The schema names the notification channels too.
	l, err := drv.NewListener(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	if err := l.Listen(ctx, storage.TopicInsert); err != nil {
		t.Fatalf("listen: %v", err)
	}
	args := map[string]string{"note": `'); ` + drop + `; --`}
	res, err := e.Enqueue(ctx, wfName, args, workflow.EnqueueOptions{Key: `key'; ` + drop + `; --`})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	hints, err := drv.QueueHints(ctx, storage.QueueHintsParams{Queues: []string{queueName}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Wait(ctx); err != nil || n != (storage.Notification{Topic: storage.TopicInsert, Payload: hints[0]}) {
		t.Fatalf("notification: %+v, %v; want the insert into queue %q (hint %s)", n, err, queueName, hints[0])
	}
	ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		jobs, err := drv.JobList(ctx, acidic.JobFilter{Kind: kind, States: []acidic.JobState{acidic.JobCompleted}})
		r, rerr := e.Get(ctx, res.Run.ID)
		if err != nil || rerr != nil {
			return false, err.Error()
		}
		return r.State == acidic.RunSucceeded && len(jobs) == 1, string(r.State)
	})
	if !ok {
		t.Fatalf("the run and its job did not finish: %s", saw)
	}
	jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: queueName})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("jobs of queue %q: %v, %v", queueName, jobs, err)
	}
	for _, j := range jobs {
		if j.Kind != kind && j.Kind != wfName {
			t.Errorf("job %d has kind %q", j.ID, j.Kind)
		}
	}
	if r, err := e.GetByKey(ctx, wfName, `key'; `+drop+`; --`); err != nil || r.Workflow != wfName || r.Queue != queueName {
		t.Fatalf("run by key: %+v, %v", r, err)
	}

	var canaryRows, tables, schemas int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM "+canary+".t").Scan(&canaryRows); err != nil || canaryRows != 1 {
		t.Fatalf("the canary table: %d rows, %v", canaryRows, err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&tables); err != nil || tables != 16 {
		t.Errorf("schema %q holds %d tables (%v), want jobs, runs, run_steps, run_step_logs, run_step_failures, outbox, notify_key, leader, nodes, periodic_schedules, queue_controls, queue_slots, queue_limits, job_graphs, awaited_jobs, schema_migrations", schema, tables, err)
	}
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1 || '%'", schema[:5]).Scan(&schemas); err != nil || schemas != 1 {
		t.Errorf("%d schemas start like %q (%v), want only it", schemas, schema, err)
	}
}
