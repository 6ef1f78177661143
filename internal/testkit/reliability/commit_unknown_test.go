package reliability

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// TestEnqueueCommitWithoutAnswerIsUnknown: the connection of an enqueue
// breaks as its COMMIT is sent, so no answer comes. The caller is told the
// outcome is unknown, with the run it concerns (an *EnqueueUnknownError
// matching acidic.ErrCommitUnknown), not a plain error a caller would
// retry blindly into a second run.
func TestEnqueueCommitWithoutAnswerIsUnknown(t *testing.T) {
	drv := testdb.New(t, testdb.Options{})
	proxy := startTestProxy(t, 0)
	cfg := poolConfig(t, testURL(), "acidic-reliability-commit-unknown", 4)
	proxy.route(cfg)
	pool := newPool(t, cfg)
	engDrv := postgres.New(pool, postgres.Options{Schema: drv.Schema()})
	logger, _ := newQuietLogger(nil)
	eng, err := workflow.NewEngine(engDrv, workflow.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Register(workflow.Define("lost-commit", workflow.Options{},
		steps.Do("one", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error { return nil }))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	proxy.cutStatement(func(sql string) bool { return strings.EqualFold(strings.TrimSpace(sql), "commit") })
	_, err = eng.Enqueue(ctx, "lost-commit", struct{}{}, workflow.EnqueueOptions{})
	var unknown *workflow.EnqueueUnknownError
	if !errors.As(err, &unknown) || !errors.Is(err, acidic.ErrCommitUnknown) {
		t.Fatalf("Enqueue whose COMMIT got no answer: %v, want an *EnqueueUnknownError matching acidic.ErrCommitUnknown", err)
	}
	if !strings.HasPrefix(unknown.Key, "lost-commit:") || !strings.Contains(err.Error(), unknown.RunID.String()) {
		t.Errorf("the error names run %s, key %q: %v", unknown.RunID, unknown.Key, err)
	}
	// The COMMIT never reached the server: the caller can look, and enqueue
	// again.
	if _, err := eng.Get(ctx, unknown.RunID); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("Get of the run whose COMMIT was cut: %v, want acidic.ErrNotFound", err)
	}
	res, err := eng.Enqueue(ctx, "lost-commit", struct{}{}, workflow.EnqueueOptions{Key: "again"})
	if err != nil || res.Duplicate {
		t.Fatalf("Enqueue after the lost COMMIT: %+v, %v", res, err)
	}
}
