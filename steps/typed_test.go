package steps_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/workflow"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// engineFor makes an engine on a fresh schema with defs registered; the
// tests work its queue with drainAll.
func engineFor(t *testing.T, workers *queue.Workers, defs ...workflow.Definition) *workflow.Engine {
	t.Helper()
	drv := testdb.New(t, testdb.Options{})
	eng, err := workflow.NewEngine(drv, workflow.Config{
		Queue:  queue.Config{Workers: workers},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Register(defs...); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return eng
}

func drainAll(t *testing.T, eng *workflow.Engine) {
	t.Helper()
	for _, q := range []string{queue.DefaultQueue, "mail"} {
		if _, err := eng.Queue().Drain(ctxT(t), q, queue.DrainOptions{WithScheduled: true}); err != nil {
			t.Fatalf("Drain %s: %v", q, err)
		}
	}
}

type rideArgs struct {
	Rider string `json:"rider"`
	Cents int    `json:"cents"`
}

type rideState struct {
	RideID   string `json:"ride_id"`
	ChargeID string `json:"charge_id"`
}

type receiptArgs struct {
	Rider  string `json:"rider"`
	Charge string `json:"charge"`
}

// rideRun is what each step of the ride workflow is a method of: the step's
// context, typed once here, and the workflow's collaborators.
type rideRun struct {
	*steps.Context[rideArgs, rideState]
	log     *[]string
	receipt queue.Kind[receiptArgs]
}

func (r rideRun) createRide(ctx context.Context) error {
	r.State.RideID = "ride-" + r.Args.Rider
	*r.log = append(*r.log, "create "+r.State.RideID)
	return nil
}

func (r rideRun) charge(ctx context.Context) error {
	r.State.ChargeID = fmt.Sprintf("ch-%d-%s", r.Args.Cents, r.IdempotencyKey())
	*r.log = append(*r.log, "charge "+r.Step())
	return nil
}

func (r rideRun) sendReceipt(ctx context.Context) error {
	// A typed job kind staged in the step's transaction: the step's context
	// is a queue.Enqueuer.
	if _, err := r.receipt.Enqueue(ctx, r, receiptArgs{Rider: r.Args.Rider, Charge: r.State.ChargeID}, queue.EnqueueOptions{Queue: "mail"}); err != nil {
		return err
	}
	return r.SetResult(r.State.RideID)
}

// Steps written as methods of a value that embeds the typed context run in
// order, see the run's arguments and state, and stage typed jobs.
func TestBinderStepsAreMethods(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	var log []string
	var mailed []receiptArgs
	receipt := queue.NewKind[receiptArgs]("ride_receipt")
	workers := queue.NewWorkers()
	if err := receipt.Handle(workers, func(ctx context.Context, job *acidic.Job, args receiptArgs) error {
		mailed = append(mailed, args)
		return nil
	}, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	on := steps.Bind(func(sc *steps.Context[rideArgs, rideState]) rideRun { return rideRun{sc, &log, receipt} })
	ride := workflow.Define("ride", workflow.Options{},
		on.Do("create_ride", rideRun.createRide),
		on.Do("charge", rideRun.charge),
		on.Do("send_receipt", rideRun.sendReceipt),
	)
	eng := engineFor(t, workers, ride)
	res, err := ride.Enqueue(ctx, eng, rideArgs{Rider: "ada", Cents: 2000}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	drainAll(t, eng)
	r, err := ride.Get(ctx, eng, res.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != acidic.RunSucceeded || r.Attrs.RideID != "ride-ada" || !strings.HasPrefix(r.Attrs.ChargeID, "ch-2000-"+r.ID.String()) {
		t.Errorf("run %s, state %+v", r.State, r.Attrs)
	}
	if got := strings.Join(log, "; "); got != "create ride-ada; charge charge" {
		t.Errorf("steps ran: %s", got)
	}
	if len(mailed) != 1 || mailed[0] != (receiptArgs{Rider: "ada", Charge: r.Attrs.ChargeID}) {
		t.Errorf("receipts: %+v", mailed)
	}
	if id, err := acidic.DecodeResult[string](r.Run); err != nil || id != "ride-ada" {
		t.Errorf("result %q, %v", id, err)
	}
}

// A Binder without a method (or without its bind function) makes a step
// that Register refuses.
func TestBinderWithoutFunctionIsInvalid(t *testing.T) {
	t.Parallel()
	on := steps.Bind(func(sc *steps.Context[rideArgs, rideState]) rideRun { return rideRun{Context: sc} })
	var none steps.Binder[rideArgs, rideState, rideRun]
	for name, list := range map[string][]steps.Step[rideArgs, rideState]{
		"nil method":      {on.Do("a", nil), on.Do("b", rideRun.charge)},
		"nil bind":        {none.Do("a", rideRun.charge), on.Do("b", rideRun.charge)},
		"nil await fn":    {on.Await("a", nil, steps.AwaitOptions{}), on.Do("b", rideRun.charge)},
		"await, nil bind": {none.Await("a", func(rideRun, context.Context) ([]steps.RunRequest, error) { return nil, nil }, steps.AwaitOptions{}), on.Do("b", rideRun.charge)},
	} {
		if err := steps.Validate(list); !errors.Is(err, steps.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

type quoteArgs struct {
	Carrier string `json:"carrier"`
}

type quote struct {
	Carrier string `json:"carrier"`
	Cents   int    `json:"cents"`
}

// The step after an await step reads its children's results typed; a
// result of another shape, or a child without a result, is a typed error.
func TestChildResults(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	quoteRun := workflow.Define[quoteArgs, struct{}]("quote", workflow.Options{}).
		Step("price", func(_ context.Context, sc *steps.Context[quoteArgs, struct{}]) error {
			if sc.Args.Carrier == "none" {
				return nil // no result
			}
			return sc.SetResult(quote{Carrier: sc.Args.Carrier, Cents: 100 * len(sc.Args.Carrier)})
		})
	type shipState struct {
		Quotes []quote `json:"quotes"`
		Errs   []string
	}
	ship := workflow.Define[[]string, shipState]("ship", workflow.Options{}).
		Await("quotes", func(_ context.Context, sc *steps.Context[[]string, shipState]) ([]steps.RunRequest, error) {
			var reqs []steps.RunRequest
			for _, c := range sc.Args {
				reqs = append(reqs, quoteRun.Request(quoteArgs{Carrier: c}))
			}
			return reqs, nil
		}, steps.AwaitOptions{}).
		Step("choose", func(ctx context.Context, sc *steps.Context[[]string, shipState]) error {
			qs, err := steps.ChildResults[quote](ctx, sc, "quotes")
			if err != nil {
				sc.State.Errs = append(sc.State.Errs, err.Error())
				var de *acidic.DecodeError
				if !errors.Is(err, acidic.ErrNoResult) && !errors.As(err, &de) {
					return err
				}
			}
			sc.State.Quotes = qs
			// Another shape: a typed decode error.
			_, err = steps.ChildResults[[]int](ctx, sc, "quotes")
			var de *acidic.DecodeError
			if errors.As(err, &de) {
				sc.State.Errs = append(sc.State.Errs, "decode "+de.What+" into "+de.Type)
			} else if err != nil {
				sc.State.Errs = append(sc.State.Errs, err.Error())
			}
			return nil
		})
	eng := engineFor(t, nil, quoteRun, ship)

	res, err := ship.Enqueue(ctx, eng, []string{"ups", "dhl2"}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	drainAll(t, eng)
	r, err := ship.Get(ctx, eng, res.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Children staged together come in no particular order.
	slices.SortFunc(r.Attrs.Quotes, func(a, b quote) int { return strings.Compare(a.Carrier, b.Carrier) })
	want := []quote{{"dhl2", 400}, {"ups", 300}}
	if r.State != acidic.RunSucceeded || fmt.Sprint(r.Attrs.Quotes) != fmt.Sprint(want) {
		t.Errorf("run %s (%s): quotes %v, want %v", r.State, r.Error, r.Attrs.Quotes, want)
	}
	if len(r.Attrs.Errs) != 1 || r.Attrs.Errs[0] != "decode result into []int" {
		t.Errorf("errors seen: %q, want one typed decode error", r.Attrs.Errs)
	}

	res, err = ship.Enqueue(ctx, eng, []string{"ups", "none"}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	drainAll(t, eng)
	if r, err = ship.Get(ctx, eng, res.Run.ID); err != nil {
		t.Fatal(err)
	}
	if len(r.Attrs.Errs) == 0 || !strings.Contains(r.Attrs.Errs[0], acidic.ErrNoResult.Error()) {
		t.Errorf("a child without a result: errors %q, want ErrNoResult", r.Attrs.Errs)
	}
}
