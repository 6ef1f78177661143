package steps_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// PaymentArgs are the arguments of the payment workflow of the examples.
type PaymentArgs struct {
	Account string `json:"account"`
	Cents   int    `json:"cents"`
}

// This example writes to the application's own table in the step's
// transaction: the row commits with the step, or not at all. The first
// attempt fails after its insert, which rolls the insert back.
func ExampleContext_Tx() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()
	if _, err := drv.Pool().Exec(ctx, "CREATE TABLE ledger (account text, cents int)"); err != nil {
		panic(err)
	}

	payment := workflow.Define("payment", workflow.Options{},
		steps.Do("book", func(ctx context.Context, sc *steps.Context[PaymentArgs, struct{}]) error {
			tx := postgres.PgxTx(sc.Tx())
			_, err := tx.Exec(ctx, "INSERT INTO ledger (account, cents) VALUES ($1, $2)", sc.Args.Account, sc.Args.Cents)
			if err != nil {
				return err
			}
			if sc.Attempt() == 1 {
				return errors.New("network blip") // rolls the insert back; the step is retried
			}
			return nil
		}))
	eng := exampleEngine(drv, payment)

	r := performRun(eng, "payment", PaymentArgs{Account: "acme", Cents: 1200})
	var rows int
	if err := drv.Pool().QueryRow(ctx, "SELECT count(*) FROM ledger").Scan(&rows); err != nil {
		panic(err)
	}
	fmt.Println(r.State, "after", r.Steps[0].Attempt, "attempts")
	fmt.Println("ledger rows:", rows)
	// Output:
	// succeeded after 2 attempts
	// ledger rows: 1
}

// ShipArgs and PackArgs are the arguments of the shipping workflows of the
// examples.
type (
	ShipArgs struct {
		Order string `json:"order"`
	}
	PackArgs struct {
		Item string `json:"item"`
	}
)

// This example fans out: a parent run awaits two child runs, which run in
// parallel, and continues once, after both have finished.
func ExampleAwaitRuns() {
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	pack := workflow.Define("pack", workflow.Options{},
		steps.Do("pack", func(ctx context.Context, sc *steps.Context[PackArgs, struct{}]) error {
			return sc.SetResult("packed " + sc.Args.Item)
		}))
	ship := workflow.Define("ship", workflow.Options{},
		steps.AwaitRuns[ShipArgs, struct{}]("pack-all", steps.AwaitOptions{},
			steps.RunRequest{Workflow: "pack", Args: PackArgs{Item: "book"}},
			steps.RunRequest{Workflow: "pack", Args: PackArgs{Item: "lamp"}},
		),
		steps.Do("ship", func(ctx context.Context, sc *steps.Context[ShipArgs, struct{}]) error {
			children, err := sc.Children(ctx, "pack-all")
			if err != nil {
				return err
			}
			var results []string
			for _, c := range children {
				results = append(results, fmt.Sprintf("%s %s", c.State, c.Result))
			}
			slices.Sort(results) // the children finish in any order
			fmt.Println(strings.Join(results, "\n"))
			fmt.Println("shipping", sc.Args.Order)
			return nil
		}))
	eng := exampleEngine(drv, pack, ship)

	r := performRun(eng, "ship", ShipArgs{Order: "o-9"})
	fmt.Println(r.State)
	// Output:
	// succeeded "packed book"
	// succeeded "packed lamp"
	// shipping o-9
	// succeeded
}

// NewsletterArgs are the arguments of the newsletter workflow of the
// examples.
type NewsletterArgs struct {
	To []string `json:"to"`
}

// This example sends one mail per item. Each item commits with the cursor,
// so when the third one fails, the run resumes at that item: the first two
// are not sent again.
func ExampleForEach() {
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	newsletter := workflow.Define("newsletter", workflow.Options{},
		steps.ForEach("send",
			func(sc *steps.Context[NewsletterArgs, struct{}]) ([]string, error) {
				return sc.Args.To, nil
			},
			func(ctx context.Context, sc *steps.Context[NewsletterArgs, struct{}], to string) error {
				if to == "cy@example.com" && sc.Attempt() == 1 {
					fmt.Println("mail to", to, "failed")
					return errors.New("mail server busy")
				}
				// A real step passes sc.IdempotencyKey(), which names the
				// item, to the mail service.
				fmt.Println("mail to", to)
				return nil
			},
			steps.ForEachOptions{}),
	)
	eng := exampleEngine(drv, newsletter)

	r := performRun(eng, "newsletter", NewsletterArgs{To: []string{"ann@example.com", "bo@example.com", "cy@example.com", "di@example.com"}})
	fmt.Println(r.State)
	// Output:
	// mail to ann@example.com
	// mail to bo@example.com
	// mail to cy@example.com failed
	// mail to cy@example.com
	// mail to di@example.com
	// succeeded
}

// RefundArgs are the arguments of the refund workflow of the examples.
type RefundArgs struct {
	Order string `json:"order"`
	Cents int    `json:"cents"`
}

// This example halts a run for a person's approval: the run rests in state
// halted, and no job works it, until Engine.Retry resumes it at the step
// after the one that halted.
func ExampleHalt() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	refund := workflow.Define("refund", workflow.Options{},
		steps.Do("review", func(ctx context.Context, sc *steps.Context[RefundArgs, struct{}]) error {
			if sc.Args.Cents > 10000 {
				fmt.Println("large refund: waiting for approval")
				return steps.Halt() // commits this step, then rests
			}
			return nil
		}),
		steps.Do("pay", func(ctx context.Context, sc *steps.Context[RefundArgs, struct{}]) error {
			fmt.Println("refund paid")
			return nil
		}),
	)
	eng := exampleEngine(drv, refund)

	r := performRun(eng, "refund", RefundArgs{Order: "o-3", Cents: 25000})
	fmt.Println(r.State, "before", r.RecoveryPoint)

	// Later, someone approves the refund.
	if _, err := eng.Retry(ctx, r.ID); err != nil {
		panic(err)
	}
	r = drainRun(eng, r.ID)
	fmt.Println(r.State)
	// Output:
	// large refund: waiting for approval
	// halted before pay
	// refund paid
	// succeeded
}

// RideArgs are the arguments of the ride workflow of the examples.
type RideArgs struct {
	Rider string `json:"rider"`
	Cents int    `json:"cents"`
}

// RideState is the ride workflow's persisted state.
type RideState struct {
	RideID   string `json:"ride_id"`
	ChargeID string `json:"charge_id"`
}

// ReceiptArgs are the arguments of the receipt jobs of the examples.
type ReceiptArgs struct {
	Rider string `json:"rider"`
	Ride  string `json:"ride"`
}

// rideCreate is what every step of the ride workflow is a method of, as in
// AcidicJob's RideCreateJob: the step's context, typed once here, and what
// the steps use.
type rideCreate struct {
	*steps.Context[RideArgs, RideState]
	receipts queue.Kind[ReceiptArgs]
}

func (r rideCreate) createRide(ctx context.Context) error {
	r.State.RideID = "ride-" + r.Args.Rider
	return nil
}

func (r rideCreate) createCharge(ctx context.Context) error {
	// A real step calls the payment provider with r.IdempotencyKey().
	r.State.ChargeID = fmt.Sprintf("ch-%d", r.Args.Cents)
	return nil
}

func (r rideCreate) sendReceipt(ctx context.Context) error {
	// The step's context stages a typed job: it exists only if the step
	// commits.
	_, err := r.receipts.Enqueue(ctx, r, ReceiptArgs{Rider: r.Args.Rider, Ride: r.State.RideID}, queue.EnqueueOptions{})
	return err
}

// This example writes a workflow's steps as methods of a value that embeds
// the step's typed context: the types are written once, in the struct, and
// no step repeats them.
func ExampleBind() {
	ctx := context.Background()
	drv, cleanup := testdb.ExampleDriver()
	defer cleanup()

	receipts := queue.NewKind[ReceiptArgs]("ride_receipt")
	on := steps.Bind(func(sc *steps.Context[RideArgs, RideState]) rideCreate {
		return rideCreate{Context: sc, receipts: receipts}
	})
	ride := workflow.Define("ride_create", workflow.Options{},
		on.Do("create_ride", rideCreate.createRide),
		on.Do("create_charge", rideCreate.createCharge),
		on.Do("send_receipt", rideCreate.sendReceipt),
	)
	workers := queue.NewWorkers()
	if err := receipts.Handle(workers, func(ctx context.Context, job *acidic.Job, args ReceiptArgs) error {
		fmt.Println("receipt for", args.Rider, "of", args.Ride)
		return nil
	}, queue.KindOptions{}); err != nil {
		panic(err)
	}
	eng, err := workflow.NewEngine(drv, workflow.Config{Queue: queue.Config{Workers: workers}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(ride); err != nil {
		panic(err)
	}

	res, err := ride.Enqueue(ctx, eng, RideArgs{Rider: "ada", Cents: 2000}, workflow.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	drainRun(eng, res.Run.ID)
	r, err := ride.Get(ctx, eng, res.Run.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.State, r.Attrs.RideID, r.Attrs.ChargeID)
	// Output:
	// receipt for ada of ride-ada
	// succeeded ride-ada ch-2000
}

// exampleEngine returns an engine on drv with defs registered. It is not
// started: the examples work its queue with performRun and drainRun.
func exampleEngine(drv *postgres.Driver, defs ...workflow.Definition) *workflow.Engine {
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := eng.Register(defs...); err != nil {
		panic(err)
	}
	return eng
}

// performRun enqueues a run and works it as drainRun does.
func performRun(eng *workflow.Engine, name string, args any) *acidic.Run {
	res, err := eng.Enqueue(context.Background(), name, args, workflow.EnqueueOptions{})
	if err != nil {
		panic(err)
	}
	return drainRun(eng, res.Run.ID)
}

// drainRun works the default queue in this goroutine until no job is left,
// retries included without their backoff (what a started engine does in the
// background), and returns the run.
func drainRun(eng *workflow.Engine, id uuid.UUID) *acidic.Run {
	ctx := context.Background()
	if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{WithScheduled: true}); err != nil {
		panic(err)
	}
	r, err := eng.Get(ctx, id)
	if err != nil {
		panic(err)
	}
	return r
}
