package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// TestConnectionLostResumingAwaitingRunIsRetried: when the last child of an
// awaiting run finishes, the run's next job first reads its children (did
// one fail?). A lost connection at that moment is a transient error like
// any other: the job must retry and the run succeed, not fail for good.
// The proxy cuts the connection of the first statement that lists a run's
// children after the child's step began.
func TestConnectionLostResumingAwaitingRunIsRetried(t *testing.T) {
	started := time.Now()
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	admin, schema := drv.Pool(), drv.Schema()
	createScenarioTables(t, admin, schema)
	proxy := startTestProxy(t, 0)
	listsChildren := func(sql string) bool {
		sql = strings.ToLower(sql)
		return strings.Contains(sql, ".runs") && strings.Contains(sql, "parent_run_id =")
	}
	define := func(ef *effector) []workflow.Definition {
		effect := func(name string) steps.Step[struct{}, struct{}] {
			return steps.Do(name, func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				return ef.effect(ctx, sc.Tx(), sc.RunID(), name, 0)
			})
		}
		parent := workflow.Define("resume", workflow.Options{MaxAttempts: 10, Backoff: func(int, error) time.Duration { return 20 * time.Millisecond }},
			effect("start"),
			steps.AwaitRuns[struct{}, struct{}]("children", steps.AwaitOptions{}, steps.RunRequest{Workflow: "resume-child"}),
			effect("after"),
		)
		child := workflow.Define("resume-child", workflow.Options{MaxAttempts: 10},
			steps.Do("work", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				proxy.cutStatement(listsChildren)
				return ef.effect(ctx, sc.Tx(), sc.RunID(), "work", 0)
			}),
		)
		return []workflow.Definition{parent, child}
	}

	cfg := poolConfig(t, testURL(), "acidic-reliability-resume", 8)
	proxy.route(cfg)
	engDrv := postgres.New(newPool(t, cfg), postgres.Options{Schema: schema})
	logger, _ := newQuietLogger(nil)
	ecfg := resilientEngineConfig(2)
	ecfg.Logger = logger
	eng, err := workflow.NewEngine(engDrv, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ef := &effector{schema: schema, side: admin, actor: "engine"}
	if err := eng.Register(define(ef)...); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})

	watcher, err := workflow.NewEngine(drv, workflow.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Register(define(ef)...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := watcher.Enqueue(ctx, "resume", struct{}{}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := watcher.Wait(ctx, res.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.cuts.Load() != 1 {
		t.Errorf("the proxy cut %d connections, want 1: no statement listing a run's children was seen (did the RunList query change?)", proxy.cuts.Load())
	}
	lost := 0
	if r.State != acidic.RunSucceeded {
		lost = 1
		t.Errorf("run %s at %s after a lost connection while reading its children: %s", r.State, r.RecoveryPoint, r.Error)
	}
	for _, step := range []string{"start", "after"} {
		if n := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "effects")+" WHERE run_id = $1 AND step = $2", r.ID, step); n != 1 && lost == 0 {
			t.Errorf("step %s: %d effects, want 1", step, n)
		}
	}
	report(t, counts{scenario: "lost-connection-on-resume", runs: 1, kills: int(proxy.cuts.Load()), txRetries: engDrv.Stats().TxRetries, lost: lost}, started)
}
