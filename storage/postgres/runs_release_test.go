package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/storage"
)

// runSteps returns a run's step log, failing the test on error.
func runSteps(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID) []storage.Step {
	t.Helper()
	steps, err := e.RunSteps(ctx, id)
	if err != nil {
		t.Fatalf("RunSteps(%s): %v", id, err)
	}
	return steps
}
