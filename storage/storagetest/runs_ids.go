package storagetest

import (
	"errors"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// testRunInsertIDTaken checks that a run inserted with the id of a run of
// another key is acidic.ErrConflict and writes nothing.
func testRunInsertIDTaken(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	first := insertRun(ctx, t, drv, "first")
	in := runInsert("second")
	in.ID = first.ID
	if _, _, err := drv.RunInsert(ctx, in); !errors.Is(err, acidic.ErrConflict) {
		t.Fatalf("RunInsert with a taken id = %v, want acidic.ErrConflict", err)
	}
	if _, err := drv.RunGetByKey(ctx, storage.RunGetByKeyParams{Key: "second"}); !errors.Is(err, acidic.ErrNotFound) {
		t.Fatalf("the refused run exists: %v", err)
	}
}
