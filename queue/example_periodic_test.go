package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
)

// This example registers a job that runs at 09:00 in New York on weekdays.
// A started client enqueues each period's job by itself; here a clock the
// example sets stands for time passing, and EnqueuePeriodic runs the pass a
// started client runs at each period.
func ExamplePeriodicJob() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	// Friday 8 March 2030, 07:00 in New York; clocks there move to summer
	// time on Sunday, so Monday's 09:00 is an hour earlier in UTC.
	now := time.Date(2030, 3, 8, 12, 0, 0, 0, time.UTC)
	client, err := queue.New(drv, queue.Config{
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler),
		Periodic: []queue.PeriodicJob{{
			Name:     "morning-report",
			Spec:     "0 9 * * MON-FRI",
			TimeZone: "America/New_York",
			Kind:     "report",
			Args:     map[string]string{"scope": "all"},
			Missed:   acidic.MissedRunOnce,
		}},
	})
	if err != nil {
		panic(err)
	}
	res, err := client.EnqueuePeriodic(ctx) // registers the schedule
	if err != nil {
		panic(err)
	}
	fmt.Println("next run:", res.NextRunAt.UTC())

	now = res.NextRunAt.Add(time.Second)
	if res, err = client.EnqueuePeriodic(ctx); err != nil {
		panic(err)
	}
	for i, p := range res.Enqueued {
		fmt.Printf("enqueued job %s for %s\n", res.Jobs[i].Kind, p.At.Format("Mon 15:04 MST"))
	}
	fmt.Println("next run:", res.NextRunAt.UTC())
	// Output:
	// next run: 2030-03-08 14:00:00 +0000 UTC
	// enqueued job report for Fri 09:00 EST
	// next run: 2030-03-11 13:00:00 +0000 UTC
}
