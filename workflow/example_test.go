package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

// OrderArgs are the arguments of the order workflow of the examples.
type OrderArgs struct {
	OrderID string `json:"order_id"`
	Cents   int    `json:"cents"`
}

// OrderState is the order workflow's persisted state: what one step stores
// there, the steps after it read.
type OrderState struct {
	Total    int    `json:"total"`
	ChargeID string `json:"charge_id"`
}

// This example defines a workflow of three steps, registers it, enqueues a
// run through the workflow's typed handle and lets a started engine work it.
// The types are given once, to Define; each step's function is checked
// against them, and so are the arguments of Enqueue.
func Example() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	order := workflow.Define[OrderArgs, OrderState]("order", workflow.Options{}).
		Step("price", func(ctx context.Context, sc *steps.Context[OrderArgs, OrderState]) error {
			sc.State.Total = sc.Args.Cents + 500 // shipping
			return nil
		}).
		Step("charge", func(ctx context.Context, sc *steps.Context[OrderArgs, OrderState]) error {
			// A real step calls a payment gateway here, passing
			// sc.IdempotencyKey() so that a retried call charges once.
			sc.State.ChargeID = "ch_" + sc.Args.OrderID
			return nil
		}).
		Step("receipt", func(ctx context.Context, sc *steps.Context[OrderArgs, OrderState]) error {
			// The last step's result is the run's result.
			return sc.SetResult(fmt.Sprintf("%s: %d cents charged (%s)", sc.Args.OrderID, sc.State.Total, sc.State.ChargeID))
		})

	eng, err := workflow.NewEngine(drv, workflow.Config{
		Queue:  queue.Config{Queues: map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 4}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(order); err != nil {
		panic(err)
	}
	if err := eng.Start(ctx); err != nil {
		panic(err)
	}
	defer eng.Stop(ctx)

	res, err := order.Enqueue(ctx, eng, OrderArgs{OrderID: "o-1", Cents: 4200}, workflow.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	// Wait returns once the run has finished (or halted), with its
	// arguments and persisted state decoded.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := order.Wait(waitCtx, eng, res.Run.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.State, r.Args.OrderID, r.Attrs.Total, r.Attrs.ChargeID)
	receipt, err := acidic.DecodeResult[string](r.Run)
	if err != nil {
		panic(err)
	}
	fmt.Println(receipt)
	for _, s := range r.Steps {
		fmt.Println(s.Name, s.State)
	}
	// Output:
	// succeeded o-1 4700 ch_o-1
	// o-1: 4700 cents charged (ch_o-1)
	// price succeeded
	// charge succeeded
	// receipt succeeded
}

// QuoteArgs are the arguments of the quote workflow of the examples.
type QuoteArgs struct {
	Carrier string `json:"carrier"`
}

// Quote is the result of a quote run.
type Quote struct {
	Carrier string `json:"carrier"`
	Cents   int    `json:"cents"`
}

// This example shows what the typed handle checks: a step awaits runs of
// another workflow made with that workflow's Request (arguments of its
// type), reads their results typed, and the run's own result is decoded
// into its type. A handle whose workflow the engine does not have is
// ErrUnknownWorkflow, and nothing is written.
func ExampleWorkflow_Request() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	quote := workflow.Define[QuoteArgs, struct{}]("quote", workflow.Options{}).
		Step("price", func(ctx context.Context, sc *steps.Context[QuoteArgs, struct{}]) error {
			return sc.SetResult(Quote{Carrier: sc.Args.Carrier, Cents: 300 * len(sc.Args.Carrier)})
		})
	shipping := workflow.Define[OrderArgs, struct{}]("shipping", workflow.Options{}).
		AwaitRuns("quote", steps.AwaitOptions{},
			quote.Request(QuoteArgs{Carrier: "ups"}),
			quote.Request(QuoteArgs{Carrier: "dhl-express"}),
		).
		Step("choose", func(ctx context.Context, sc *steps.Context[OrderArgs, struct{}]) error {
			quotes, err := steps.ChildResults[Quote](ctx, sc, "quote")
			if err != nil {
				return err
			}
			best := quotes[0]
			for _, q := range quotes[1:] {
				if q.Cents < best.Cents {
					best = q
				}
			}
			return sc.SetResult(best)
		})
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(quote, shipping); err != nil {
		panic(err)
	}

	res, err := shipping.Enqueue(ctx, eng, OrderArgs{OrderID: "o-9"}, workflow.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		panic(err)
	}
	r, err := shipping.Get(ctx, eng, res.Run.ID)
	if err != nil {
		panic(err)
	}
	best, err := acidic.DecodeResult[Quote](r.Run)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Args.OrderID, r.State, "ships with", best.Carrier, "for", best.Cents)

	// Decoding the result into another type is a typed error.
	_, err = acidic.DecodeResult[[]string](r.Run)
	var de *acidic.DecodeError
	fmt.Println(errors.As(err, &de), de.What, "into", de.Type)

	// "refund" is not registered with this engine.
	refund := workflow.Define[OrderArgs, struct{}]("refund", workflow.Options{}).
		Step("pay", func(ctx context.Context, sc *steps.Context[OrderArgs, struct{}]) error { return nil })
	_, err = refund.Enqueue(ctx, eng, OrderArgs{OrderID: "o-9"}, workflow.EnqueueOptions{})
	fmt.Println(errors.Is(err, workflow.ErrUnknownWorkflow))
	// Output:
	// o-9 succeeded ships with ups for 900
	// true result into []string
	// true
}

// WelcomeArgs are the arguments of the welcome workflow of the examples.
type WelcomeArgs struct {
	Email string `json:"email"`
}

// This example enqueues a run inside the caller's own transaction, together
// with the row that asks for it: the run exists only if that transaction
// commits.
func ExampleEngine_EnqueueTx() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	welcome := workflow.Define("welcome", workflow.Options{},
		steps.Do("send", func(ctx context.Context, sc *steps.Context[WelcomeArgs, struct{}]) error {
			return nil
		}))
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(welcome); err != nil {
		panic(err)
	}
	if _, err := drv.Pool().Exec(ctx, "CREATE TABLE users (email text PRIMARY KEY)"); err != nil {
		panic(err)
	}

	signUp := func(email string, commit bool) {
		tx, err := drv.Pool().Begin(ctx)
		if err != nil {
			panic(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO users (email) VALUES ($1)", email); err != nil {
			panic(err)
		}
		// drv.WrapTx hands the engine the pgx transaction.
		if _, err := eng.EnqueueTx(ctx, drv.WrapTx(tx), "welcome", WelcomeArgs{Email: email}, workflow.EnqueueOptions{}); err != nil {
			panic(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				panic(err)
			}
		}
	}
	countRuns := func() int {
		runs, err := eng.List(ctx, acidic.RunFilter{Workflow: "welcome"})
		if err != nil {
			panic(err)
		}
		return len(runs)
	}

	signUp("ada@example.com", false) // rolled back: no user, no run
	fmt.Println("runs after a rollback:", countRuns())
	signUp("ada@example.com", true)
	fmt.Println("runs after a commit:", countRuns())
	// Output:
	// runs after a rollback: 0
	// runs after a commit: 1
}

// This example gives runs an idempotency key of the caller's: enqueueing the
// same order twice makes one run. Keys are namespaced per workflow.
func ExampleEngine_Enqueue_idempotencyKey() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	checkout := workflow.Define("checkout", workflow.Options{},
		steps.Do("charge", func(ctx context.Context, sc *steps.Context[OrderArgs, struct{}]) error {
			return nil
		}))
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(checkout); err != nil {
		panic(err)
	}

	args := OrderArgs{OrderID: "o-42", Cents: 1000}
	opts := workflow.EnqueueOptions{Key: "o-42"}
	first, err := eng.Enqueue(ctx, "checkout", args, opts)
	if err != nil {
		panic(err)
	}
	second, err := eng.Enqueue(ctx, "checkout", args, opts)
	if err != nil {
		panic(err)
	}
	fmt.Println("duplicate:", second.Duplicate, "same run:", second.Run.ID == first.Run.ID)
	fmt.Println("stored key:", first.Run.IdempotencyKey)

	found, err := eng.GetByKey(ctx, "checkout", "o-42")
	if err != nil {
		panic(err)
	}
	fmt.Println("found by key:", found.ID == first.Run.ID)

	// The same key with other arguments is refused.
	_, err = eng.Enqueue(ctx, "checkout", OrderArgs{OrderID: "o-42", Cents: 9999}, opts)
	fmt.Println("other arguments:", errors.Is(err, run.ErrMismatchedArgs))
	// Output:
	// duplicate: true same run: true
	// stored key: checkout:o-42
	// found by key: true
	// other arguments: true
}

// This example retries a run that failed for good: it resumes at the step
// that failed, and the steps that committed before it do not run again.
func ExampleEngine_Retry() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	cardValid := false
	order := workflow.Define("order", workflow.Options{MaxAttempts: 1},
		steps.Do("reserve", func(ctx context.Context, sc *steps.Context[OrderArgs, OrderState]) error {
			fmt.Println("reserve stock")
			return nil
		}),
		steps.Do("charge", func(ctx context.Context, sc *steps.Context[OrderArgs, OrderState]) error {
			if !cardValid {
				return errors.New("card expired")
			}
			fmt.Println("charge card")
			return nil
		}),
	)
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(order); err != nil {
		panic(err)
	}
	// Drain works the queue in this goroutine until no job is left, as a
	// started engine would in the background.
	drain := func() {
		if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
			panic(err)
		}
	}

	res, err := eng.Enqueue(ctx, "order", OrderArgs{OrderID: "o-7", Cents: 1500}, workflow.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	drain()
	r, err := eng.Get(ctx, res.Run.ID)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s at %s: %s\n", r.State, r.RecoveryPoint, r.Error)

	cardValid = true // the customer updated their card
	if _, err := eng.Retry(ctx, r.ID); err != nil {
		panic(err)
	}
	drain()
	if r, err = eng.Get(ctx, r.ID); err != nil {
		panic(err)
	}
	fmt.Println(r.State)
	// Output:
	// reserve stock
	// failed at charge: attempts exhausted (1 of 1): card expired
	// charge card
	// succeeded
}

// This example starts a run with a state (AcidicJob's `providing:`): the
// first step finds the collection in sc.State, and a for-each step walks it.
// WithState checks the state's type at compile time.
func ExampleWorkflow_WithState() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	type Batch struct {
		Items []int `json:"items"`
		Sum   int   `json:"sum"`
	}
	sum := workflow.Define("sum", workflow.Options{},
		steps.ForEach("add", func(sc *steps.Context[struct{}, Batch]) ([]int, error) { return sc.State.Items, nil },
			func(ctx context.Context, sc *steps.Context[struct{}, Batch], item int) error {
				sc.State.Sum += item
				return nil
			}, steps.ForEachOptions{}),
		steps.Do("report", func(ctx context.Context, sc *steps.Context[struct{}, Batch]) error {
			return sc.SetResult(sc.State.Sum)
		}),
	)
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(sum); err != nil {
		panic(err)
	}
	res, err := eng.Enqueue(ctx, "sum", struct{}{}, sum.WithState(workflow.EnqueueOptions{}, Batch{Items: []int{1, 2, 3, 4, 5}}))
	if err != nil {
		panic(err)
	}
	// Work the run here, without starting the engine.
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		panic(err)
	}
	r, err := eng.Get(ctx, res.Run.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.State, string(r.Result))
	// Output:
	// succeeded 15
}
