package queue_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
)

// This example pauses a queue on every node, scales it and resumes it, as
// an operator would from any process on the schema. A queue nothing has
// ever used is refused, so a typo pauses nothing.
func ExampleClient_PauseQueue() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()
	client, err := queue.New(drv, queue.Config{}) // enqueues and controls; works nothing
	if err != nil {
		panic(err)
	}
	if _, err := client.Enqueue(ctx, "charge", nil, queue.EnqueueOptions{Queue: "payments"}); err != nil {
		panic(err)
	}

	ctl, err := client.PauseQueue(ctx, "payments")
	if err != nil {
		panic(err)
	}
	fmt.Println("paused:", ctl.Paused)
	ctl, err = client.ScaleQueue(ctx, "payments", 2) // two at a time on each node
	if err != nil {
		panic(err)
	}
	fmt.Println("workers per node:", ctl.MaxWorkers)
	ctl, err = client.ResumeQueue(ctx, "payments")
	if err != nil {
		panic(err)
	}
	fmt.Println("paused:", ctl.Paused)

	_, err = client.PauseQueue(ctx, "paymnets")
	fmt.Println(errors.Is(err, acidic.ErrUnknownQueue))
	// Output:
	// paused: true
	// workers per node: 2
	// paused: false
	// true
}
