package acidictest

import (
	"context"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Retention methods, through faults like every other query.

func (x *faultExec) JobPruneByState(ctx context.Context, p storage.JobPruneByStateParams) (r0 int, err error) {
	err = x.f.do(ctx, "JobPruneByState", func() error {
		r0, err = x.ex.JobPruneByState(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunPrune(ctx context.Context, p storage.RunPruneParams) (r0 int, err error) {
	err = x.f.do(ctx, "RunPrune", func() error {
		r0, err = x.ex.RunPrune(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunDelete(ctx context.Context, p storage.RunDeleteParams) (r0 *acidic.Run, err error) {
	err = x.f.do(ctx, "RunDelete", func() error {
		r0, err = x.ex.RunDelete(ctx, p)
		return err
	})
	return
}
