package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// A wake-up that arrives while the producer is fetching is not lost: it
// makes the producer fetch again. Bursts of two or three inserts, with the
// poll an hour away, must each start every job they enqueued; before the
// fix, a notification that arrived during the fetch the burst's first
// insert triggered was overwritten by that fetch's result, and the job it
// announced waited for the next poll.
func TestGuaranteeWakeUpDuringFetchIsNotLost(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		started := make(chan int64, 64)
		_ = ws.Handle("burst", func(ctx context.Context, job *acidic.Job) error {
			started <- job.ID
			return nil
		}, queue.KindOptions{})
		cfg := fastConfig(ws, 8)
		cfg.PollInterval = time.Hour
		cfg.HeartbeatInterval, cfg.RescueAfter = time.Hour, 2*time.Hour
		drv, listening := watchListening(drv)
		c := newClient(t, drv, cfg)
		start(t, c)
		listening(t)
		ctx := ctxT(t)
		const bursts = 100
		for b := range bursts {
			want := map[int64]bool{}
			for range 2 + b%2 {
				j, err := c.Enqueue(ctx, "burst", nil, queue.EnqueueOptions{})
				if err != nil {
					t.Fatal(err)
				}
				want[j.ID] = true
			}
			timeout := time.After(10 * time.Second)
			for len(want) > 0 {
				select {
				case id := <-started:
					delete(want, id)
				case <-timeout:
					t.Fatalf("burst %d of %d: jobs %v enqueued 10s ago never started: a wake-up was lost", b+1, bursts, keys(want))
				}
			}
		}
	})
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
