package acidictest

import (
	"context"

	"github.com/acidic-go/acidic/storage"
)

func (d *faultDriver) JobFetchLimited(ctx context.Context, p storage.JobFetchLimitedParams) (r storage.JobFetchLimitedResult, err error) {
	err = d.f.do(ctx, "JobFetchLimited", func() error {
		r, err = d.drv.JobFetchLimited(ctx, p)
		return err
	})
	return r, err
}
