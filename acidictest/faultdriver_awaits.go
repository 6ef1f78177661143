package acidictest

import (
	"context"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The awaited jobs (storage.Awaits) pass through faults like every other
// call.

func (x *faultExec) AwaitedJobsInsert(ctx context.Context, p storage.AwaitedJobsInsertParams) error {
	return x.f.do(ctx, "AwaitedJobsInsert", func() error { return x.ex.AwaitedJobsInsert(ctx, p) })
}

func (x *faultExec) AwaitedJobsResume(ctx context.Context, p storage.AwaitedJobsResumeParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "AwaitedJobsResume", func() error {
		r0, r1, err = x.ex.AwaitedJobsResume(ctx, p)
		return err
	})
	return
}

func (x *faultExec) AwaitedJobsList(ctx context.Context, p storage.AwaitedJobsListParams) (r0 []*acidic.AwaitedJob, err error) {
	err = x.f.do(ctx, "AwaitedJobsList", func() error {
		r0, err = x.ex.AwaitedJobsList(ctx, p)
		return err
	})
	return
}
