package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
)

// This example uses the queue alone: register a function per job kind,
// start a client that works the default queue, enqueue a job, and stop the
// client once the job is done.
func Example() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	done := make(chan struct{})
	workers := queue.NewWorkers()
	err := workers.Handle("email", func(ctx context.Context, job *acidic.Job) error {
		var args struct {
			To string `json:"to"`
		}
		if err := json.Unmarshal(job.Args, &args); err != nil {
			return queue.Discard(err) // retrying cannot fix bad arguments
		}
		fmt.Println("sending an email to", args.To)
		close(done)
		return nil // an error would retry the job with backoff
	}, queue.KindOptions{})
	if err != nil {
		panic(err)
	}

	client, err := queue.New(drv, queue.Config{
		Workers: workers,
		Queues:  map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 4}},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	if err := client.Start(ctx); err != nil {
		panic(err)
	}

	job, err := client.Enqueue(ctx, "email", map[string]string{"to": "ada@example.com"}, queue.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	<-done
	// Stop waits for running jobs and records their outcomes.
	if err := client.Stop(ctx); err != nil {
		panic(err)
	}
	job, err = client.Get(ctx, job.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(job.State)
	// Output:
	// sending an email to ada@example.com
	// completed
}

// ResizeArgs are the arguments of the resize jobs of the examples.
type ResizeArgs struct {
	Image string `json:"image"`
	Width int    `json:"width"`
}

// This example works a queue in the caller's goroutine until no job is left,
// as tests and tools do; the client need not be started.
func ExampleClient_Drain() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	workers := queue.NewWorkers()
	// HandleArgs decodes each job's arguments before calling the function.
	err := queue.HandleArgs(workers, "resize", func(ctx context.Context, job *acidic.Job, args ResizeArgs) error {
		fmt.Printf("resize %s to %dpx\n", args.Image, args.Width)
		return nil
	}, queue.KindOptions{})
	if err != nil {
		panic(err)
	}
	client, err := queue.New(drv, queue.Config{Workers: workers, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}

	// Lower priorities run first: 0 is the highest.
	_, err = client.EnqueueMany(ctx, []queue.EnqueueParams{
		{Kind: "resize", Args: ResizeArgs{Image: "cat.png", Width: 640}, Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(1)}},
		{Kind: "resize", Args: ResizeArgs{Image: "cat.png", Width: 64}, Opts: queue.EnqueueOptions{Priority: queue.PriorityOf(0)}},
	})
	if err != nil {
		panic(err)
	}
	res, err := client.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("succeeded:", res.Success)
	// Output:
	// resize cat.png to 64px
	// resize cat.png to 640px
	// succeeded: 2
}

// This example makes a job unique: while the first job exists, enqueueing
// an equal one returns the first, marked Duplicate, and inserts nothing.
func ExampleUniqueOptions() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	client, err := queue.New(drv, queue.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	opts := queue.EnqueueOptions{
		// Compare the jobs on their kind and order id only.
		Unique: &queue.UniqueOptions{
			Fields:  []queue.UniqueField{queue.UniqueByKind, queue.UniqueByArgs},
			ArgKeys: []string{"order"},
		},
	}
	first, err := client.Enqueue(ctx, "invoice", map[string]any{"order": 42, "note": "first"}, opts)
	if err != nil {
		panic(err)
	}
	second, err := client.Enqueue(ctx, "invoice", map[string]any{"order": 42, "note": "again"}, opts)
	if err != nil {
		panic(err)
	}
	fmt.Println("first:", first.Duplicate)
	fmt.Println("second:", second.Duplicate, "same job:", second.ID == first.ID)
	fmt.Println("second's args:", string(second.Args))
	// Output:
	// first: false
	// second: true same job: true
	// second's args: {"note": "first", "order": 42}
}

// EmailArgs are the arguments of the email jobs of the examples.
type EmailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

// sendEmail is the typed handle of the email kind: its enqueues take
// EmailArgs, and its worker receives them decoded.
var sendEmail = queue.NewKind[EmailArgs]("send_email")

// This example declares a job kind with its argument type once, registers
// its worker and enqueues jobs through it, one at a time and in a batch;
// the compiler checks every argument.
func ExampleKind() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	workers := queue.NewWorkers()
	err := sendEmail.Handle(workers, func(ctx context.Context, job *acidic.Job, args EmailArgs) error {
		fmt.Printf("to %s: %s\n", args.To, args.Subject)
		return nil
	}, queue.KindOptions{})
	if err != nil {
		panic(err)
	}
	client, err := queue.New(drv, queue.Config{Workers: workers, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}

	job, err := sendEmail.Enqueue(ctx, client, EmailArgs{To: "ada@example.com", Subject: "welcome"}, queue.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	_, err = client.EnqueueMany(ctx, []queue.EnqueueParams{
		sendEmail.Params(EmailArgs{To: "bob@example.com", Subject: "welcome"}, queue.EnqueueOptions{}),
		sendEmail.Params(EmailArgs{To: "ada@example.com", Subject: "your first week"}, queue.EnqueueOptions{ScheduleIn: time.Hour}),
	})
	if err != nil {
		panic(err)
	}
	if _, err := client.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		panic(err)
	}

	// Args reads a stored job's arguments back, typed.
	args, err := sendEmail.Args(job)
	if err != nil {
		panic(err)
	}
	fmt.Println("first job was for", args.To)
	// Output:
	// to ada@example.com: welcome
	// to bob@example.com: welcome
	// first job was for ada@example.com
}

// This example defines a job kind in one place, as Oban's "use Oban.Worker,
// queue: :payments, max_attempts: 1, priority: 1, unique: [...]" does: its
// worker and the options every enqueue of it takes, unless the enqueue sets
// its own. PriorityOf(0) is a priority, not "unset": it overrides the kind's.
func ExampleKindOptions() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	workers := queue.NewWorkers()
	err := workers.Handle("refund", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{
		Queue:       "payments",
		Priority:    queue.PriorityOf(1),
		MaxAttempts: 1,
		Unique:      &queue.UniqueOptions{ArgKeys: []string{"order"}, States: queue.AllStates()},
	})
	if err != nil {
		panic(err)
	}
	client, err := queue.New(drv, queue.Config{Workers: workers, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	first, err := client.Enqueue(ctx, "refund", map[string]int{"order": 7}, queue.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(first.Queue, first.Priority, first.MaxAttempts)
	again, err := client.Enqueue(ctx, "refund", map[string]int{"order": 7}, queue.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("again a duplicate:", again.Duplicate)
	urgent, err := client.Enqueue(ctx, "refund", map[string]int{"order": 8}, queue.EnqueueOptions{Priority: queue.PriorityOf(0)})
	if err != nil {
		panic(err)
	}
	fmt.Println("urgent priority:", urgent.Priority)
	// Output:
	// payments 1 1
	// again a duplicate: true
	// urgent priority: 0
}

// This example makes a whole graph unique by a key: a redelivered webhook
// enqueues the licence workflow again, and gets the first one's jobs back.
func ExampleGraph_unique() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	client, err := queue.New(drv, queue.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	licence := func(webhookID string) *queue.Graph {
		g := &queue.Graph{Key: "licence:" + webhookID}
		g.Add(queue.GraphJob{Name: "hex", Kind: "hex"}).
			Add(queue.GraphJob{Name: "licence", Kind: "licence"}).
			Add(queue.GraphJob{Name: "welcome", Kind: "welcome", After: []string{"hex", "licence"}}).
			Add(queue.GraphJob{Name: "notify", Kind: "notify", After: []string{"hex", "licence"}})
		return g
	}
	first, err := client.EnqueueGraph(ctx, licence("wh_1"))
	if err != nil {
		panic(err)
	}
	redelivered, err := client.EnqueueGraph(ctx, licence("wh_1"))
	if err != nil {
		panic(err)
	}
	fmt.Println("duplicate:", redelivered["welcome"].Duplicate, "same job:", redelivered["welcome"].ID == first["welcome"].ID)
	all, err := client.List(ctx, acidic.JobFilter{})
	if err != nil {
		panic(err)
	}
	fmt.Println("jobs stored:", len(all))
	// Output:
	// duplicate: true same job: true
	// jobs stored: 4
}
