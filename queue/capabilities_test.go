package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// silentDriver is a PostgreSQL driver that declares no notifications, as an
// embedded driver without them would: NewListener fails, and counts the
// calls.
type silentDriver struct {
	storage.Driver
	listens atomic.Int64
}

func (d *silentDriver) Capabilities() storage.Capabilities {
	c := d.Driver.Capabilities()
	c.Notify = storage.NotifyNone
	return c
}

func (d *silentDriver) NewListener(context.Context) (storage.Listener, error) {
	d.listens.Add(1)
	return nil, errors.New("silentDriver: no notifications")
}

// TestNoNotificationsMeansPolling checks that the client reads the driver's
// capabilities: on a driver without notifications it never opens a
// listener, and polling alone finds every job.
func TestNoNotificationsMeansPolling(t *testing.T) {
	t.Parallel()
	drv := &silentDriver{Driver: testdb.New(t, testdb.Options{})}
	ws := queue.NewWorkers()
	var ran atomic.Int64
	if err := ws.Handle("poll", func(ctx context.Context, job *acidic.Job) error {
		ran.Add(1)
		return nil
	}, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, drv, fastConfig(ws, 2))
	start(t, c)
	var ids []int64
	for range 5 {
		j, err := c.Enqueue(ctxT(t), "poll", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		waitJob(t, drv, id, acidic.JobCompleted)
	}
	if n := drv.listens.Load(); n != 0 {
		t.Errorf("NewListener called %d times on a driver without notifications", n)
	}
	if n := ran.Load(); n != 5 {
		t.Errorf("worker ran %d times, want 5", n)
	}
}
