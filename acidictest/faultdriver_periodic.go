package acidictest

import (
	"context"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The periodic schedule methods of faultExec (storage.PeriodicExecutor).

func (x *faultExec) PeriodicRegister(ctx context.Context, p storage.PeriodicRegisterParams) (r0 []*acidic.Periodic, err error) {
	err = x.f.do(ctx, "PeriodicRegister", func() error {
		r0, err = x.ex.PeriodicRegister(ctx, p)
		return err
	})
	return
}

func (x *faultExec) PeriodicList(ctx context.Context, p storage.PeriodicListParams) (r0 []*acidic.Periodic, err error) {
	err = x.f.do(ctx, "PeriodicList", func() error {
		r0, err = x.ex.PeriodicList(ctx, p)
		return err
	})
	return
}

func (x *faultExec) PeriodicDue(ctx context.Context, p storage.PeriodicDueParams) (r0 []*acidic.Periodic, err error) {
	err = x.f.do(ctx, "PeriodicDue", func() error {
		r0, err = x.ex.PeriodicDue(ctx, p)
		return err
	})
	return
}

func (x *faultExec) PeriodicAdvance(ctx context.Context, p storage.PeriodicAdvanceParams) (r0 *acidic.Periodic, r1 bool, err error) {
	err = x.f.do(ctx, "PeriodicAdvance", func() error {
		r0, r1, err = x.ex.PeriodicAdvance(ctx, p)
		return err
	})
	return
}
