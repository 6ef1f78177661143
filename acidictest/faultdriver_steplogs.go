package acidictest

import (
	"context"

	"github.com/acidic-go/acidic/storage"
)

// What is kept with each step (storage.StepLogs) passes through faults like
// every other call.

func (x *faultExec) StepLogInsert(ctx context.Context, p storage.StepLogInsertParams) error {
	return x.f.do(ctx, "StepLogInsert", func() error { return x.ex.StepLogInsert(ctx, p) })
}

func (x *faultExec) StepFailureInsert(ctx context.Context, p storage.StepFailureInsertParams) error {
	return x.f.do(ctx, "StepFailureInsert", func() error { return x.ex.StepFailureInsert(ctx, p) })
}

func (x *faultExec) StepDetails(ctx context.Context, p storage.StepDetailsParams) (r0 []storage.StepDetail, err error) {
	err = x.f.do(ctx, "StepDetails", func() error {
		r0, err = x.ex.StepDetails(ctx, p)
		return err
	})
	return
}
