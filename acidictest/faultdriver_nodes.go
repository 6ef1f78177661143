package acidictest

import (
	"context"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// The storage.Nodes and storage.JobAges methods of faultDriver: like every
// other call, they pass through the fault injection.

func (d *faultDriver) LeaderElect(ctx context.Context, p storage.LeaderElectParams) (r0 *acidic.Leader, err error) {
	err = d.f.do(ctx, "LeaderElect", func() error {
		r0, err = d.drv.LeaderElect(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) LeaderResign(ctx context.Context, p storage.LeaderResignParams) (r0 bool, err error) {
	err = d.f.do(ctx, "LeaderResign", func() error {
		r0, err = d.drv.LeaderResign(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) LeaderGet(ctx context.Context, p storage.LeaderGetParams) (r0 *acidic.Leader, err error) {
	err = d.f.do(ctx, "LeaderGet", func() error {
		r0, err = d.drv.LeaderGet(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) NodeRecord(ctx context.Context, p storage.NodeRecordParams) (r0 *acidic.Node, err error) {
	err = d.f.do(ctx, "NodeRecord", func() error {
		r0, err = d.drv.NodeRecord(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) NodeDelete(ctx context.Context, p storage.NodeDeleteParams) (r0 bool, err error) {
	err = d.f.do(ctx, "NodeDelete", func() error {
		r0, err = d.drv.NodeDelete(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) NodeList(ctx context.Context, p storage.NodeListParams) (r0 []*acidic.Node, err error) {
	err = d.f.do(ctx, "NodeList", func() error {
		r0, err = d.drv.NodeList(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) NodePrune(ctx context.Context, p storage.NodePruneParams) (r0 int, err error) {
	err = d.f.do(ctx, "NodePrune", func() error {
		r0, err = d.drv.NodePrune(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) JobQueueAges(ctx context.Context, p storage.JobQueueAgesParams) (r0 []acidic.QueueAge, err error) {
	err = d.f.do(ctx, "JobQueueAges", func() error {
		r0, err = d.drv.JobQueueAges(ctx, p)
		return err
	})
	return
}
