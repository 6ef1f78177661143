package acidictest

import (
	"context"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The queue controls (storage.Controls) pass through faults like every
// other call.

func (d *faultDriver) QueuePause(ctx context.Context, p storage.QueuePauseParams) (r0 *acidic.QueueControl, err error) {
	err = d.f.do(ctx, "QueuePause", func() error {
		r0, err = d.drv.QueuePause(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) QueueScale(ctx context.Context, p storage.QueueScaleParams) (r0 *acidic.QueueControl, err error) {
	err = d.f.do(ctx, "QueueScale", func() error {
		r0, err = d.drv.QueueScale(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) QueueControls(ctx context.Context, p storage.QueueControlsParams) (r0 []*acidic.QueueControl, err error) {
	err = d.f.do(ctx, "QueueControls", func() error {
		r0, err = d.drv.QueueControls(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) QueueRegister(ctx context.Context, p storage.QueueRegisterParams) error {
	return d.f.do(ctx, "QueueRegister", func() error { return d.drv.QueueRegister(ctx, p) })
}
