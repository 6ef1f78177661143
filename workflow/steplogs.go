package workflow

import (
	"context"
	"log/slog"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/base/steplog"
	"github.com/acidic-go/acidic/storage"
)

// What the executor keeps with each step beside its step log entry: the
// records the step wrote through its logger (in the step's transaction) and
// each failed attempt (with the failure's release). See
// docs/observability.md, "Logs kept with each run".

// stepLogger returns the logger of one try of a step: it passes records on
// to the engine's logger and keeps a copy in buf.
func (e *Engine) stepLogger(buf *steplog.Buffer) *slog.Logger {
	return slog.New(buf.Handler(e.cfg.Logger.Handler()))
}

// keepStepLogs writes the records of a step that is about to commit in its
// own transaction, so they commit with it, or not at all.
func keepStepLogs(ctx context.Context, tx storage.Tx, rec *acidic.Run, idx int, buf *steplog.Buffer) error {
	records, dropped := buf.Records()
	if len(records) == 0 && dropped == 0 {
		return nil // a step that logged nothing costs nothing
	}
	return tx.StepLogInsert(ctx, storage.StepLogInsertParams{RunID: rec.ID, Position: idx, Records: records, Dropped: dropped})
}

// releaseFailed gives the run up after a failed step (rel, fenced by the
// lease) and adds the failure to the step's history, in one transaction:
// a worker that lost the lease records neither.
func (e *Engine) releaseFailed(ctx context.Context, rel storage.RunReleaseParams, started time.Time) error {
	return e.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		if _, err := tx.RunRelease(ctx, rel); err != nil {
			return err
		}
		if rel.Step == nil {
			return nil
		}
		return tx.StepFailureInsert(ctx, storage.StepFailureInsertParams{RunID: rel.ID, Position: rel.Step.Position,
			Failure: acidic.StepFailure{Attempt: rel.Step.Attempt, Error: rel.Error, StartedAt: started, FailedAt: time.Now()}})
	})
}
