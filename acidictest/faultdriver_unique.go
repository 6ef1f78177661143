package acidictest

import (
	"context"

	"github.com/acidic-go/acidic/storage"
)

// The storage.Uniqueness methods, through the fault injection.

func (x *faultExec) JobUniqueRelease(ctx context.Context, p storage.JobUniqueReleaseParams) (r0 int, err error) {
	err = x.f.do(ctx, "JobUniqueRelease", func() error {
		r0, err = x.ex.JobUniqueRelease(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobGraphReserve(ctx context.Context, p storage.JobGraphReserveParams) (r0 storage.JobGraphReservation, err error) {
	err = x.f.do(ctx, "JobGraphReserve", func() error {
		r0, err = x.ex.JobGraphReserve(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobGraphRecord(ctx context.Context, p storage.JobGraphRecordParams) (err error) {
	err = x.f.do(ctx, "JobGraphRecord", func() error {
		return x.ex.JobGraphRecord(ctx, p)
	})
	return
}

func (x *faultExec) JobGraphPrune(ctx context.Context, p storage.JobGraphPruneParams) (r0 int, err error) {
	err = x.f.do(ctx, "JobGraphPrune", func() error {
		r0, err = x.ex.JobGraphPrune(ctx, p)
		return err
	})
	return
}
